// The tablet reader for a written consultation's draft or submission (issue 20): the meetings' PdfReader,
// pointed at the consultation's own document addresses (page images, word boxes, search).
import { PdfReader } from "./pdfreader.js";

const meta = JSON.parse(document.getElementById("reader-meta").textContent);
const reader = new PdfReader(document.getElementById("reader"), {
  base: (docId) => `/api/consultations/${meta.consultation_id}/documents/${docId}`,
});
reader.open(meta, 1);
