// The standalone reader page (meeting_reader.html): opens the version described in #reader-meta.
import { PdfReader } from "./pdfreader.js";

const meta = JSON.parse(document.getElementById("reader-meta").textContent);
const reader = new PdfReader(document.getElementById("reader"), { meetingId: meta.meeting_id });
reader.open(meta, 1);
window.eoRoomInfo = meta.room; // the annotator's badges and the chair's "hide from everyone"
window.eoReader = reader;
