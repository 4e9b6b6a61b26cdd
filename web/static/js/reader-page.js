// The standalone reader page (meeting_reader.html): opens the version described in #reader-meta.
import { PdfReader } from "./pdfreader.js";

const meta = JSON.parse(document.getElementById("reader-meta").textContent);
const reader = new PdfReader(document.getElementById("reader"), { meetingId: meta.meeting_id });
reader.open(meta, 1);
window.eoReader = reader;
