"""OCR of one rendered PDF page or one image frame, under a time limit: PDFium renders, RapidOCR reads.

RapidOCR (``rapidocr-onnxruntime``) carries PP-OCRv4 detection and Chinese+English recognition
models inside its wheel, so nothing is fetched at run time. Rendering and OCR run in a helper
process (one per loader process, started on first use, models loaded once): a page that runs past
its time limit is abandoned by killing that process, and a crash in the native code costs the page,
never the loader. The helper is a plain ``python -c`` subprocess talking over a socket pair, not a
multiprocessing child, so it never re-imports the caller's main module and may be started from
any process, daemonic pool workers included; it exits when its socket closes (its parent ended).

The recognised boxes are put in reading order by :func:`reading_order`: top to bottom by lines,
left to right within a line (columns are not detected: a two-column page reads across).
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Pages are rendered at 220 dpi: at 150 the recogniser runs the words of Latin text together
# ("Chunksareembeddedinbatches", ~16 characters per "word" on a dense A4 page), at 220 it keeps the
# spaces (5.7, like the text itself) and was faster too (18 s vs 31 s a page on the same loaded
# CPU). Text detection runs on the page scaled to DET_SIDE_PX; the lines it finds are cut from the
# full rendering for recognition.
DPI = 220
# Larger pages (posters, plans) are rendered smaller; RapidOCR would shrink them past this anyway.
MAX_SIDE_PX = 3000
DET_SIDE_PX = 2000
# Recognition boxes scored below this are dropped (RapidOCR's own default).
MIN_SCORE = 0.5
# A box joins a line when its vertical centre lies within this share of the line's height from the
# line's centre.
LINE_TOLERANCE = 0.5
# One thread per helper: the parse workers already run one helper each, and ONNX Runtime's spinning
# threads slow down badly when cores are shared.
OCR_THREADS = 1
# Loading the models (imports included) may take this long before the first page is OCR'd.
START_TIMEOUT_S = 120.0
# What the helper runs: the parent's import path, then this module's server on the inherited socket.
_BOOT = "import sys; sys.path[:0] = {path!r}; from {module} import serve_fd; serve_fd({fd})"


class OcrError(Exception):
    """A page could not be OCR'd; ``str(err)`` is the reason."""


class OcrUnavailable(OcrError):
    """OCR cannot run here at all (missing package, helper cannot start): no page will do better."""


@dataclass(frozen=True, slots=True)
class Box:
    """One recognised piece of text and its bounding box in pixels (y grows downwards)."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str

    @property
    def middle(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)


def reading_order(boxes: list[Box]) -> str:
    """The boxes' text as lines: boxes grouped into lines top to bottom, each line left to right."""
    lines: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: (b.middle, b.x0)):
        if lines:
            line = lines[-1]
            top, bottom = min(b.y0 for b in line), max(b.y1 for b in line)
            if abs(box.middle - (top + bottom) / 2) <= LINE_TOLERANCE * max(bottom - top, box.height):
                line.append(box)
                continue
        lines.append([box])
    texts = (" ".join(b.text.strip() for b in sorted(line, key=lambda b: b.x0)) for line in lines)
    return "\n".join(t for t in texts if t)


def render_scale(width_pt: float, height_pt: float, dpi: int = DPI) -> float:
    """Pixels per PDF unit: ``dpi``, less when the page would exceed MAX_SIDE_PX."""
    scale = dpi / 72
    longest = max(width_pt, height_pt, 1.0)
    return min(scale, MAX_SIDE_PX / longest)


# ----------------------------------------------------------------------------------------------
# the helper process


def _boxes(result: Any) -> list[Box]:
    boxes = []
    for points, text, score in result or []:
        if float(score) < MIN_SCORE or not str(text).strip():
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        boxes.append(Box(min(xs), min(ys), max(xs), max(ys), str(text)))
    return boxes


def image_frame(path: str, number: int) -> Any:
    """Frame ``number`` (1-based: a multi-page TIFF's page) of an image file as RGB, its longer side
    at most MAX_SIDE_PX. Pillow's decompression-bomb warning is an error here, as is its bomb error."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.seek(number - 1)
            frame = image.convert("RGB")
    frame.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX))
    return frame


def serve_fd(fd: int) -> None:
    """The helper's entry point: serve requests on the socket inherited as ``fd``."""
    _serve(Connection(fd))


def _serve(conn: Connection) -> None:
    """Load the models, then OCR (path, page number, dpi) requests until the socket closes."""
    try:
        import numpy as np
        import pypdfium2 as pdfium
        from rapidocr_onnxruntime import RapidOCR

        engine = RapidOCR(
            intra_op_num_threads=OCR_THREADS,
            inter_op_num_threads=1,
            max_side_len=MAX_SIDE_PX,
            det_limit_type="max",
            det_limit_side_len=DET_SIDE_PX,
        )
    except Exception as err:  # noqa: BLE001 - reported to the parent as the reason OCR is unavailable
        conn.send(("unavailable", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", None))
    opened: tuple[str, Any] | None = None
    while True:
        try:
            path, number, dpi = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if not path.lower().endswith(".pdf"):
                image = image_frame(path, number)
            else:
                if opened is None or opened[0] != path:
                    if opened is not None:
                        opened[1].close()
                    opened = (path, pdfium.PdfDocument(path))
                page = opened[1][number - 1]
                width, height = page.get_size()
                image = page.render(scale=render_scale(width, height, dpi)).to_pil().convert("RGB")
                page.close()
            if all(low == high for low, high in image.getextrema()):
                reply: tuple[str, Any] = ("ok", [])  # a page of one colour: nothing to read
            else:
                result, _elapsed = engine(np.asarray(image), use_cls=False)
                reply = ("ok", _boxes(result))
        except Exception as err:  # noqa: BLE001 - one page's failure is that page's reason
            reply = ("error", f"{type(err).__name__}: {err}"[:200])
        try:
            conn.send(reply)
        except OSError:  # the parent is gone
            return


class OcrEngine:
    """Owns one helper process; :meth:`page_text` OCRs one page at a time (thread-safe)."""

    def __init__(self, dpi: int = DPI) -> None:
        self.dpi = dpi
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._unavailable: str | None = None

    def _start(self) -> Connection:
        if self._unavailable is not None:
            raise OcrUnavailable(self._unavailable)
        if self._conn is not None and self._proc is not None and self._proc.poll() is None:
            return self._conn
        self._stop()
        ours, theirs = socket.socketpair()
        boot = _BOOT.format(path=sys.path, module=__name__, fd=theirs.fileno())
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", boot], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL
            )
        except OSError as err:
            ours.close()
            self._unavailable = f"OCR helper cannot start: {err}"
            raise OcrUnavailable(self._unavailable) from err
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        status, detail = self._receive(START_TIMEOUT_S, "loading the OCR models")
        if status == "unavailable":
            self._stop()
            self._unavailable = f"OCR unavailable: {detail}"
            raise OcrUnavailable(self._unavailable)
        return self._conn

    def _receive(self, timeout_s: float, what: str) -> tuple[str, Any]:
        assert self._conn is not None
        try:
            if self._conn.poll(timeout_s):
                return self._conn.recv()
        except (EOFError, OSError):
            code = self._proc.wait(5) if self._proc is not None else None
            self._stop()
            raise OcrError(f"OCR process died while {what} (exit code {code})") from None
        self._stop()
        raise OcrError(f"OCR timed out after {timeout_s:g} s")

    def page_text(self, path: Path, number: int, timeout_s: float) -> str:
        """The text OCR reads on page ``number`` (1-based) of ``path``, in reading order; "" if none.
        ``path`` is a PDF, or an image whose frame ``number`` is read (a multi-page TIFF's page).

        Raises OcrError with the reason when the page fails or runs past ``timeout_s`` (the helper is
        then restarted for the next page), OcrUnavailable when OCR cannot run here at all.
        """
        with self._lock:
            conn = self._start()
            try:
                conn.send((str(path), number, self.dpi))
            except OSError:  # died since the last page
                self._stop()
                conn = self._start()
                conn.send((str(path), number, self.dpi))
            status, detail = self._receive(timeout_s, f"reading page {number}")
            if status != "ok":
                raise OcrError(f"OCR failed: {detail}")
            return reading_order(detail)

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass  # unkillable (uninterruptible I/O): the OS reaps it when it ends
        self._proc = self._conn = None

    def close(self) -> None:
        with self._lock:
            self._stop()


_shared: OcrEngine | None = None
_shared_lock = threading.Lock()


def shared_engine() -> OcrEngine:
    """This process's engine (its helper starts on the first page and is stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = OcrEngine()
            atexit.register(_shared.close)
        return _shared
