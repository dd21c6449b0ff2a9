"""A video's frames for the tracker: a folder of JPEGs, a list of images, or an MP4 (PyAV).

Frames are read when the tracker asks for them, not all at once (sam2 holds every frame at
1024x1024 in float32, 12 MB each); a folder or a list costs nothing until a frame is used, an
MP4 is decoded once into its uint8 frames at their own size.

``preprocess`` is sam2's ``load_video_frames`` (``_load_img_as_tensor``): PIL ``convert("RGB")``
and ``resize((1024, 1024))`` (PIL's default filter, bicubic), / 255 in float64, then float32
minus the ImageNet mean, divided by the std, the same operations in the same precision.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core import contract as C
from ..core.errors import InputError, one_line
from .inputs import as_rgb

JPEG_SUFFIXES = (".jpg", ".jpeg", ".JPG", ".JPEG")  # what sam2's folder loader lists
VIDEO_SUFFIXES = (".mp4", ".MP4", ".mov", ".MOV", ".avi", ".mkv", ".webm")
_MEAN = np.array(C.PIXEL_MEAN, np.float32)[:, None, None]
_STD = np.array(C.PIXEL_STD, np.float32)[:, None, None]


def preprocess(image) -> np.ndarray:
    """PIL image or HxWx3 uint8 RGB -> [1, 3, 1024, 1024] float32, as sam2's video loader."""
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(as_rgb(image))
    resized = np.asarray(im.convert("RGB").resize((C.IMAGE_SIZE, C.IMAGE_SIZE)))
    x = (resized / 255.0).transpose(2, 0, 1).astype(np.float32)
    x -= _MEAN
    x /= _STD
    return x[None]


class Frames:
    """``len(frames)``, ``frames.size`` (height, width of frame 0, the video's size) and
    ``frames.image(i)`` (PIL image or HxWx3 uint8) for any of the accepted sources."""

    def __init__(self, source):
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                self._items = _jpeg_folder(path)
            elif path.is_file() and path.suffix in VIDEO_SUFFIXES:
                self._items = _decode_video(path)
            elif path.exists():
                raise InputError(f"{path}: not a folder of JPEG frames nor a video file ({', '.join(VIDEO_SUFFIXES)})")
            else:
                raise InputError(f"{path}: no such folder or video file")
        else:
            try:
                self._items = [as_rgb(frame) for frame in source]
            except TypeError:
                raise InputError(
                    f"video must be a folder of JPEGs, a video file or a list of images, not {type(source).__name__}"
                ) from None
        if not self._items:
            raise InputError("the video has no frames")
        first = self.image(0)
        self.size = (first.height, first.width) if hasattr(first, "height") else first.shape[:2]

    def __len__(self) -> int:
        return len(self._items)

    def image(self, index: int):
        item = self._items[index]
        if isinstance(item, Path):
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(item) as im:
                    im.load()
                    return im.copy()
            except (UnidentifiedImageError, OSError) as exc:
                raise InputError(f"{item}: not a readable image ({one_line(exc)})") from None
        return item

    def rgb(self, index: int) -> np.ndarray:
        """Frame ``index`` as HxWx3 uint8 RGB."""
        return as_rgb(self.image(index))

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` preprocessed: [1, 3, 1024, 1024] float32."""
        return preprocess(self.image(index))


def _jpeg_folder(folder: Path) -> list[Path]:
    """The folder's JPEGs in sam2's order: by the integer value of each file's stem."""
    names = [p for p in os.listdir(folder) if os.path.splitext(p)[-1] in JPEG_SUFFIXES]
    if not names:
        raise InputError(f"{folder}: no JPEG frames (*.jpg, *.jpeg) in the folder")
    try:
        names.sort(key=lambda p: int(os.path.splitext(p)[0]))
    except ValueError:
        raise InputError(
            f"{folder}: frame files must be named by their index (00000.jpg, 00001.jpg, ...), as sam2 reads them"
        ) from None
    return [folder / n for n in names]


def _decode_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, decoded by FFmpeg through PyAV, as HxWx3 uint8 RGB."""
    try:
        import av
    except ImportError:
        raise InputError(f"{path}: reading video files needs PyAV (pip install av)") from None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"{path}: not a readable video ({one_line(exc)})") from None
