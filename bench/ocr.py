"""Character error rate of the server's OCR on rendered, degraded Vietnamese pages vs raw Tesseract.

    .venv/bin/python bench/ocr.py [--quick] [--pages N] [--dpi 200] [--extra]

Corpus: official-document text in Vietnamese with every diacritic (the demo's incoming documents,
eoffice.demo.DOCUMENTS, and a few paragraphs written here), laid out by PyMuPDF on A4 in 13 pt Liberation
Serif (the Times face of administrative documents) and 12 pt Liberation Sans (Noto Sans where Liberation is
missing), rendered in grey at --dpi (200: an office scanner's default) and degraded the way paper gets
scanned: a small skew (1-3 degrees, rendered rotated as a crooked sheet is), noise (Gaussian grain plus
specks), blur (a slightly defocused scanner) and all three together.

Measured: eoffice.renditions.ocr_image, the function the server runs on an uploaded scan (--path image, the
default) and, through renditions.ocr after rendering the page again at 300 dpi, on a PDF page without text layer
(--path pdf), with its configuration (languages; scan preparation: eoffice.scan_prep straightens and
despeckles) as eoffice.renditions.Config has them.
Baseline: the raw `tesseract <img> - -l vie` on the same image.
Optional extra baseline (--extra; skipped cleanly if the package is missing): RapidOCR 3 (`pip install rapidocr`,
not a project dependency), whose PP-OCRv6 models ship in its wheel.

CER = Levenshtein distance / length of the truth, both NFC-normalised with whitespace collapsed to one
space (line breaks are not counted as errors, word order is). Lower is better; ratio = our CER / baseline
CER (<= 1 means the pipeline is no worse than raw Tesseract). Pages per second are wall clock, one page at a
time, on a shared machine: the load average is printed. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pymupdf

from eoffice import renditions
from eoffice.demo import DOCUMENTS

WRITTEN = [
    ("QUYẾT ĐỊNH\nVề việc thành lập Tổ công tác triển khai Đề án 06 của Chính phủ",
     ["Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015; căn cứ Luật sửa đổi, bổ sung một "
      "số điều của Luật Tổ chức Chính phủ và Luật Tổ chức chính quyền địa phương ngày 22 tháng 11 năm 2019;",
      "Xét đề nghị của Giám đốc Sở Nội vụ tại Tờ trình số 147/TTr-SNV ngày 03 tháng 12 năm 2026, Chủ tịch Ủy "
      "ban nhân dân tỉnh quyết định thành lập Tổ công tác gồm các ông, bà có tên sau đây.",
      "Điều 1. Tổ công tác có nhiệm vụ hướng dẫn, đôn đốc, kiểm tra việc ứng dụng dữ liệu dân cư, định danh "
      "và xác thực điện tử phục vụ chuyển đổi số quốc gia; tổng hợp khó khăn, vướng mắc, đề xuất giải pháp.",
      "Điều 2. Quyết định này có hiệu lực kể từ ngày ký. Chánh Văn phòng Ủy ban nhân dân tỉnh, Thủ trưởng các "
      "sở, ban, ngành và Chủ tịch Ủy ban nhân dân các huyện, thị xã, thành phố chịu trách nhiệm thi hành."]),
    ("BÁO CÁO\nKết quả công tác phòng, chống thiên tai và tìm kiếm cứu nạn năm 2026",
     ["Năm 2026, trên địa bàn tỉnh xảy ra ba cơn bão, hai đợt áp thấp nhiệt đới và mưa lớn kéo dài gây sạt lở "
      "đất tại các xã miền núi Bình Liêu, Ba Chẽ, Tiên Yên; nhiều tuyến đường giao thông bị ngập sâu.",
      "Ủy ban nhân dân tỉnh đã chỉ đạo sơ tán 4.215 hộ dân khỏi khu vực nguy hiểm, huy động lực lượng quân sự, "
      "công an, dân quân tự vệ hỗ trợ nhân dân khắc phục hậu quả, ổn định đời sống.",
      "Tổng thiệt hại ước tính khoảng 312 tỷ đồng; đã hỗ trợ kịp thời gạo, nước uống, thuốc men cho người dân "
      "vùng bị ảnh hưởng; sửa chữa xong trường học, trạm y tế trước khi học sinh trở lại lớp."]),
    ("THÔNG BÁO\nLịch tiếp công dân định kỳ của Chủ tịch Ủy ban nhân dân tỉnh tháng 01 năm 2027",
     ["Thực hiện Luật Tiếp công dân, Chủ tịch Ủy ban nhân dân tỉnh tiếp công dân định kỳ vào ngày 15 hằng "
      "tháng tại Trụ sở Tiếp công dân tỉnh, số 8 đường Nguyễn Văn Cừ, phường Hồng Hà, thành phố Hạ Long.",
      "Công dân đến trình bày khiếu nại, tố cáo, kiến nghị, phản ánh mang theo giấy tờ tùy thân và tài liệu "
      "liên quan; trường hợp nhiều người cùng nội dung thì cử đại diện không quá năm người.",
      "Đề nghị Ban Tiếp công dân tỉnh phối hợp với Thanh tra tỉnh, Sở Tư pháp chuẩn bị hồ sơ, bố trí địa điểm, "
      "bảo đảm an ninh trật tự; kết quả tiếp công dân được đăng tải trên Cổng thông tin điện tử."]),
]

_LIBERATION = ("/usr/share/fonts/truetype/liberation2/", "/usr/share/fonts/truetype/liberation/")


def font(name: str, fallback: str) -> tuple[str, pymupdf.Font]:
    """A Liberation face where it is installed (fonts-liberation2), else a pymupdf-fonts face."""
    for folder in _LIBERATION:
        path = Path(folder) / f"{name}.ttf"
        if path.is_file():
            return name, pymupdf.Font(fontfile=str(path))
    return fallback, pymupdf.Font(fallback)


FONTS = {"serif": (lambda: font("LiberationSerif-Regular", "notos"), 13.0),
         "sans": (lambda: font("LiberationSans-Regular", "notos"), 12.0)}


def pages_text() -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) of every page of the corpus: the demo's documents, then the texts written here."""
    demo = [(f"{sender.upper()}\nSố: {notation}\n{summary}", body)
            for sender, notation, _, _, _, summary, body, _, _ in DOCUMENTS]
    return WRITTEN + demo


def render(heading: str, paragraphs: list[str], face: str, dpi: int, skew: float) -> tuple[np.ndarray, str]:
    """The page as a grey image (a numpy array) at ``dpi``, turned by ``skew`` degrees, and its true text."""
    make, size = FONTS[face]
    _, fnt = make()
    with pymupdf.open() as doc:
        page = doc.new_page(width=595, height=842)
        w = pymupdf.TextWriter(page.rect)
        rest = w.fill_textbox(pymupdf.Rect(70, 60, 540, 160), heading, font=fnt, fontsize=size, align=1)
        top = w.last_point.y + 2 * size
        rest += w.fill_textbox(pymupdf.Rect(70, top, 540, 790), "\n".join(paragraphs), font=fnt, fontsize=size,
                               align=0, lineheight=1.35)
        if rest:
            raise ValueError(f"text does not fit on the page: {rest}")
        w.write_text(page)
        mat = pymupdf.Matrix(dpi / 72, dpi / 72).prerotate(skew)
        pix = page.get_pixmap(matrix=mat, colorspace=pymupdf.csGRAY, alpha=False)
    img = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)[:, :pix.width].copy()
    return img, heading + " " + " ".join(paragraphs)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur (a defocused scanner)."""
    r = max(1, int(3 * sigma))
    k = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma * sigma))
    k /= k.sum()
    f = img.astype(np.float32)
    f = np.apply_along_axis(lambda v: np.convolve(np.pad(v, r, mode="edge"), k, mode="valid"), 1, f)
    f = np.apply_along_axis(lambda v: np.convolve(np.pad(v, r, mode="edge"), k, mode="valid"), 0, f)
    return np.clip(f, 0, 255).astype(np.uint8)


def noise(img: np.ndarray, rng: np.random.Generator, sigma: float = 28.0, specks: float = 0.004) -> np.ndarray:
    """Grain (Gaussian, ``sigma`` grey levels) and specks (a fraction ``specks`` of pixels black or white)."""
    f = img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    hit = rng.random(img.shape)
    out[hit < specks / 2] = 0
    out[(hit >= specks / 2) & (hit < specks)] = 255
    return out


class Degradation(NamedTuple):
    name: str
    skew: bool
    noise: bool
    blur: float  # sigma in pixels at the page's dpi, 0 = none


DEGRADATIONS = [Degradation("clean", False, False, 0), Degradation("skew", True, False, 0),
                Degradation("noise", False, True, 0), Degradation("blur", False, False, 1.2),
                Degradation("all", True, True, 1.0)]


def png(img: np.ndarray, dpi: int) -> bytes:
    pix = pymupdf.Pixmap(pymupdf.csGRAY, img.shape[1], img.shape[0], np.ascontiguousarray(img).tobytes(), False)
    pix.set_dpi(dpi, dpi)
    return bytes(pix.tobytes("png"))


class Page(NamedTuple):
    degradation: str
    face: str
    image: bytes
    truth: str


def corpus(n_texts: int, dpi: int, seed: int = 2026) -> list[Page]:
    rng = np.random.default_rng(seed)
    texts = pages_text()[:n_texts]
    out = []
    for d in DEGRADATIONS:
        for face in FONTS:
            for heading, paragraphs in texts:
                skew = float(rng.uniform(1, 3) * rng.choice([-1, 1])) if d.skew else 0.0
                img, truth = render(heading, paragraphs, face, dpi, skew)
                if d.blur:
                    img = blur(img, d.blur)
                if d.noise:
                    img = noise(img, rng)
                out.append(Page(d.name, face, png(img, dpi), truth))
    return out


# ---- character error rate ----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute: 1 each), one row at a time with numpy."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    bs = np.array([ord(c) for c in b], dtype=np.int64)
    cols = np.arange(len(b) + 1, dtype=np.int64)
    row = cols.copy()
    for i, ch in enumerate(a, 1):
        sub = row[:-1] + (bs != ord(ch))  # diagonal: substitute or keep
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(sub, row[1:] + 1)  # or delete a's character
        row = np.minimum.accumulate(new - cols) + cols  # or insert b's characters (a running minimum)
    return int(row[-1])


def cer(read: str, truth: str) -> float:
    t = normalise(truth)
    return levenshtein(normalise(read), t) / max(1, len(t))


# ---- the readers --------------------------------------------------------------------------------------------


def pipeline(image: bytes) -> str:
    """The server's OCR of an image: the same function and configuration as an uploaded scan."""
    return asyncio.run(renditions.ocr_image(image, "png", want_pdf=False))[0]


def pipeline_pdf(image: bytes) -> str:
    """The server's OCR of a scanned PDF page (no text layer): the scan on an A4 page, rendered again at 300 dpi
    (renditions.render_doc_page_png, as the PDF worker does), then renditions.ocr."""
    with pymupdf.open() as doc:
        page = doc.new_page(width=595, height=842)
        page.insert_image(page.rect, stream=image)
        png = renditions.render_doc_page_png(doc, 1)
    return asyncio.run(renditions.ocr(png))


def baseline(image: bytes) -> str:
    """Raw Tesseract, Vietnamese model, defaults (one thread, as the server runs it)."""
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(image)
        f.flush()
        return subprocess.run(["tesseract", f.name, "-", "-l", "vie"], capture_output=True, check=True,
                              env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout.decode("utf-8", "replace")


def rapidocr() -> Callable[[bytes], str] | None:
    """RapidOCR 3 (PP-OCRv6 small: detection and multilingual recognition models shipped in the wheel, ONNX
    Runtime), when installed; else None. Not a project dependency: `pip install rapidocr` to compare."""
    try:
        from rapidocr import RapidOCR  # type: ignore[import-not-found]
    except ImportError:
        return None
    engine = RapidOCR(params={"Global.log_level": "warning"})

    def read(image: bytes) -> str:
        return "\n".join(engine(image).txts or ())

    return read


class Result(NamedTuple):
    cer: dict[str, float]  # per degradation
    overall: float
    seconds: float


def measure(read: Callable[[bytes], str], pages: list[Page]) -> Result:
    errors: dict[str, list[tuple[int, int]]] = {}
    elapsed = 0.0
    for p in pages:
        t = time.perf_counter()
        text = read(p.image)
        elapsed += time.perf_counter() - t
        truth = normalise(p.truth)
        errors.setdefault(p.degradation, []).append((levenshtein(normalise(text), truth), len(truth)))
    per = {d: sum(e for e, _ in v) / sum(n for _, n in v) for d, v in errors.items()}
    every = [x for v in errors.values() for x in v]
    return Result(per, sum(e for e, _ in every) / sum(n for _, n in every), elapsed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 text per font and degradation (10 pages) instead of 4")
    ap.add_argument("--pages", type=int, default=0, help="texts per font and degradation (overrides --quick)")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--extra", action="store_true", help="also RapidOCR, when installed")
    ap.add_argument("--languages", default="", help="the pipeline's Tesseract languages (default: the server's)")
    ap.add_argument("--no-prepare", action="store_true", help="the pipeline without straightening and despeckling")
    ap.add_argument("--path", choices=("image", "pdf"), default="image",
                    help="the server path measured: an uploaded scan image (default) or a scanned PDF page")
    args = ap.parse_args()
    cfg = renditions.config()
    if args.languages or args.no_prepare:
        cfg = dataclasses.replace(cfg, languages=args.languages or cfg.languages, prepare_scans=not args.no_prepare)
        renditions.configure(cfg)
    if not renditions.ocr_available() or shutil.which("tesseract") is None:
        raise SystemExit("tesseract is not installed: run scripts/ensure-office.sh")
    n = args.pages or (1 if args.quick else 4)
    pages = corpus(n, args.dpi)
    ours = measure(pipeline if args.path == "image" else pipeline_pdf, pages)
    base = measure(baseline, pages)
    extra = None
    if args.extra:
        reader = rapidocr()
        if reader is None:
            print("RapidOCR: not installed (pip install rapidocr), skipped")
        else:
            extra = measure(reader, pages)
    load = os.getloadavg()
    print(f"{len(pages)} pages ({n} texts x {len(FONTS)} fonts x {len(DEGRADATIONS)} degradations) at {args.dpi} "
          f"dpi; pipeline ({args.path}): tesseract -l {cfg.languages}, "
          f"scan preparation {'on' if cfg.prepare_scans else 'off'}")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    head = f"{'degradation':<12}{'pipeline CER':>14}{'raw vie CER':>14}{'ratio':>8}"
    print(head + (f"{'RapidOCR CER':>14}" if extra else ""))
    for d in [x.name for x in DEGRADATIONS] + ["overall"]:
        a = ours.overall if d == "overall" else ours.cer[d]
        b = base.overall if d == "overall" else base.cer[d]
        line = f"{d:<12}{a:>14.4f}{b:>14.4f}{a / b if b else float('nan'):>8.2f}"
        if extra:
            line += f"{extra.overall if d == 'overall' else extra.cer[d]:>14.4f}"
        print(line)
    pps, bpps = len(pages) / ours.seconds, len(pages) / base.seconds
    print(f"pages/s: pipeline {pps:.3f}, raw {bpps:.3f}" + (f", RapidOCR {len(pages) / extra.seconds:.3f}"
                                                           if extra else ""))
    out = {"cer": round(ours.overall, 4), "pages_per_s": round(pps, 3), "baseline_cer": round(base.overall, 4),
           "baseline_pages_per_s": round(bpps, 3), "bench": "ocr", "pages": len(pages), "dpi": args.dpi,
           "ratio": round(ours.overall / base.overall, 3) if base.overall else None,
           "cer_by_degradation": {k: round(v, 4) for k, v in ours.cer.items()},
           "baseline_cer_by_degradation": {k: round(v, 4) for k, v in base.cer.items()},
           "languages": cfg.languages, "prepare_scans": cfg.prepare_scans, "path": args.path,
           "load1": round(load[0], 2)}
    if extra:
        out["rapidocr_cer"] = round(extra.overall, 4)
        out["rapidocr_pages_per_s"] = round(len(pages) / extra.seconds, 3)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
