"""The full CIFAR-10 in two parts small enough for the device tool (64 MiB a call), losslessly.

A lent GPU machine receives only the working tree, at most 64 MiB a call, and reaches no network;
the full CIFAR-10 is 184 MB of pixels. Lossless WebP packs them into 55 % of that, so two calls carry
it: the first part stays on the warm machine while the second call brings the rest.

    python scripts/device_data.py pack $MGNET_DATA_DIR/cifar-10-batches-py .devfull1 .devfull2   # here
    python scripts/device_data.py unpack .devfull1 .devfull2 /tmp/cifar10-full   # there: cifar-10-batches-py/

Each batch file's 10,000 images become one 100 x 100 mosaic (3,200 x 3,200 pixels, RGB); its labels
an .npy array. ``manifest.json`` holds the SHA-256 of every batch's original pixel rows and labels;
``unpack`` rebuilds the standard pickles and stops (exit 1) unless every digest matches.
"""

import argparse
import hashlib
import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PARTS = (("data_batch_1", "data_batch_2", "data_batch_3"),
         ("data_batch_4", "data_batch_5", "test_batch"))
SIDE = 32  # pixels of an image's side
COPIED = ((), ("batches.meta",))  # the class names
TILES = 100  # images per mosaic row and column: a batch file's 10,000


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def to_mosaic(rows: np.ndarray) -> np.ndarray:
    """(10000, 3072) CHW pixel rows -> (3200, 3200, 3) RGB mosaic, image i at tile (i // 100, i % 100)."""
    images = rows.reshape(TILES, TILES, 3, SIDE, SIDE)
    return images.transpose(0, 3, 1, 4, 2).reshape(TILES * SIDE, TILES * SIDE, 3)


def from_mosaic(mosaic: np.ndarray) -> np.ndarray:
    """The inverse of ``to_mosaic``."""
    images = mosaic.reshape(TILES, SIDE, TILES, SIDE, 3).transpose(0, 2, 4, 1, 3)
    return images.reshape(TILES * TILES, 3 * SIDE * SIDE)


def pack(source: Path, outputs: list[Path]) -> None:
    for index, (names, out) in enumerate(zip(PARTS, outputs)):
        out.mkdir(parents=True, exist_ok=True)
        manifest = {}
        for name in names:
            with (source / name).open("rb") as file:
                batch = pickle.load(file, encoding="bytes")
            rows = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
            if rows.shape != (TILES * TILES, 3 * SIDE * SIDE):
                sys.exit(f"{source / name}: expected 10,000 full images, found {rows.shape}")
            buffer = io.BytesIO()
            Image.fromarray(to_mosaic(rows)).save(buffer, format="WEBP", lossless=True, quality=50, method=2)
            (out / f"{name}.webp").write_bytes(buffer.getvalue())
            np.save(out / f"{name}_labels.npy", labels)
            manifest[name] = {"pixels": digest(rows), "labels": digest(labels)}
        for name in COPIED[index]:  # small files kept as they are
            (out / name).write_bytes((source / name).read_bytes())
            manifest[name] = {"bytes": digest(np.frombuffer((out / name).read_bytes(), np.uint8))}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
        size = sum(path.stat().st_size for path in out.iterdir())
        print(f"{out}: {', '.join(names)}, {size / 2**20:.1f} MiB")


def unpack(inputs: list[Path], root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for part in inputs:
        manifest = json.loads((part / "manifest.json").read_text())
        for name, expected in manifest.items():
            if "bytes" in expected:
                content = (part / name).read_bytes()
                if digest(np.frombuffer(content, np.uint8)) != expected["bytes"]:
                    sys.exit(f"{part / name}: differs from the packed file")
                (folder / name).write_bytes(content)
                continue
            rows = from_mosaic(np.asarray(Image.open(part / f"{name}.webp").convert("RGB")))
            labels = np.load(part / f"{name}_labels.npy")
            if digest(rows) != expected["pixels"] or digest(labels) != expected["labels"]:
                sys.exit(f"{part / name}: the unpacked pixels or labels differ from the packed ones")
            batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": rows}
            with (folder / name).open("wb") as file:
                pickle.dump(batch, file, protocol=4)
    print(f"{folder}: {', '.join(sorted(path.name for path in folder.iterdir()))}, every digest matches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    packing = verbs.add_parser("pack")
    packing.add_argument("source", type=Path, help="a cifar-10-batches-py folder")
    packing.add_argument("outputs", type=Path, nargs=2)
    unpacking = verbs.add_parser("unpack")
    unpacking.add_argument("inputs", type=Path, nargs=2)
    unpacking.add_argument("root", type=Path, help="cifar-10-batches-py/ is written under it")
    args = parser.parse_args()
    if args.verb == "pack":
        pack(args.source, args.outputs)
    else:
        unpack(args.inputs, args.root)


if __name__ == "__main__":
    main()
