"""Importers that turn other people's photo collections into camid manifests.

- :func:`import_folder` — a folder per class (``LABEL/*.jpg``);
- :func:`import_coco`, :func:`import_yolo`, :func:`import_voc` — detection datasets: whole images
  plus a crop around each box (with a context margin), crops grouped with their image;
- :func:`import_sheet` — the initiative's verification spreadsheet (CSV).

Each writes ``OUT/manifest.csv`` and returns an :class:`ImportResult` with counts and every row or
file it could not use (reported, never silently dropped).
"""

from data.importers.common import ImportResult, parse_class_map
from data.importers.detection import import_coco, import_voc, import_yolo
from data.importers.folder import import_folder
from data.importers.sheet import import_sheet

__all__ = [
    "ImportResult",
    "import_coco",
    "import_folder",
    "import_sheet",
    "import_voc",
    "import_yolo",
    "parse_class_map",
]
