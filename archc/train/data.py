"""Datasets for `archc train`. Classification: a user's ImageFolder, scikit-learn's digits (shipped,
no download) or FakeData for throughput runs. Segmentation: `shapes` (synthetic, made from the seed),
a folder of ``images/`` and ``masks/``, or random masks (`fake`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from archc.errors import UsageError
from archc.train.shapes import inside as shape_inside

__all__ = ["SHAPE_CLASSES", "check_mask_classes", "class_names", "data_config", "data_task", "describe", "image_tensor",
           "image_uint8", "make_datasets", "normalisation", "prepare", "shapes_image"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _digits(shape: tuple[int, ...], seed: int) -> tuple[Dataset[Any], Dataset[Any], int]:
    from sklearn.datasets import load_digits
    from torch.nn import functional as F

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False)
    x = (x.repeat(1, shape[0], 1, 1) - 0.5) / 0.5
    y = torch.tensor(d.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(y))
    tr, va = order[:cut], order[cut:]
    return TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va]), 10


def _fake(shape: tuple[int, ...], size: int) -> tuple[Dataset[Any], Dataset[Any], int]:
    from torchvision import datasets, transforms

    tf = transforms.ToTensor()
    return (datasets.FakeData(size, shape, 10, transform=tf, random_offset=0),
            datasets.FakeData(max(size // 5, 1), shape, 10, transform=tf, random_offset=size), 10)


def _rgb(image: Any) -> Any:
    return image.convert("RGB")  # a named function, so DataLoader workers can pickle it


def _resize_size(size: tuple[int, ...]) -> int:
    """The shorter side an image folder's validation images are resized to before the centre crop."""
    return int(min(size) * 256 / 224)


def _folder(root: Path, shape: tuple[int, ...]) -> tuple[Dataset[Any], Dataset[Any], int]:
    from torchvision import transforms

    size = (shape[1], shape[2])  # the spec's height and width, square or not
    # images become the spec's channel count: grey for 1-channel models, RGB otherwise
    colour = [transforms.Grayscale(1)] if shape[0] == 1 else [transforms.Lambda(_rgb)]
    mean, std = (MEAN, STD) if shape[0] == 3 else ((0.5,) * shape[0], (0.5,) * shape[0])
    train_tf = transforms.Compose([
        *colour, transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.RandomRotation(15),
        transforms.ColorJitter(0.2, 0.2, 0.2), transforms.ToTensor(), transforms.Normalize(mean, std)])
    val_tf = transforms.Compose([
        *colour, transforms.Resize(_resize_size(size)), transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize(mean, std)])
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise UsageError(f"--data {root}: expected train/ and val/ folders with one sub-folder per class")
    train, val = _image_folder(root / "train", train_tf), _image_folder(root / "val", val_tf)
    return train, val, len(train.classes)


def _image_folder(root: Path, transform: Any) -> Any:
    """torchvision's ImageFolder; a class folder without images is a usage error naming it."""
    from torchvision import datasets

    try:
        return datasets.ImageFolder(str(root), transform)
    except FileNotFoundError as e:  # "Found no valid file for the classes ..." (or no class folders at all)
        raise UsageError(f"--data {root}: {e}", hint="one sub-folder per class, each holding images "
                         "(.jpg, .png, ...): e.g. train/cat/1.jpg, val/cat/2.jpg") from None


# Where a folder's layout says it is an object-detection data set (YOLO or Ultralytics style).
_SPLITS = ("train", "val", "valid", "test")
# built-in specs whose outputs are a YOLO head
DETECTION_SPECS = "yolov8n, yolo11n, yolo_resnet18, yolov1_resnet18 (and the other yolov8/yolo11 sizes)"


def detection_layout(path: Path) -> str | None:
    """What shows that ``--data`` is an object-detection data set, or None: a data.yaml (or any .yaml/.yml
    file given), a COCO .json, or images/ beside labels/ (at the top, per split or split inside)."""
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return f"{path.name}, a YOLO data set description"
        return "a COCO annotations file" if path.suffix.lower() == ".json" else None
    if not path.is_dir():
        return None
    for name in ("data.yaml", "dataset.yaml"):
        if (path / name).is_file():
            return f"{name}, a YOLO data set description"
    for base in (path, *(path / s for s in _SPLITS)):
        if (base / "images").is_dir() and (base / "labels").is_dir():
            shown = base.relative_to(path)
            where = "" if shown == Path(".") else f"{shown}/"
            return f"{where}images/ beside {where}labels/ (YOLO box labels, one .txt per image)"
    return None


def _refuse_detection(kind: str) -> None:
    found = detection_layout(Path(kind))
    if found is not None:
        where = Path(kind)
        yaml = next((where / n for n in ("data.yaml", "dataset.yaml") if (where / n).is_file()), None)
        data = yaml or (where if where.is_file() else where / "data.yaml")
        write = "" if yaml or where.is_file() else f" (write {data}: path, train, val and names)"
        raise UsageError(
            f"--data {kind} is an object-detection data set ({found}), but this spec is not a detector: archc "
            "train reads it only for specs whose outputs are a YOLO head",
            hint=f"train a detection spec on it, e.g. `archc train {DETECTION_SPECS.split(',')[0]} --data {data}`"
                 f"{write}; built-in detectors: {DETECTION_SPECS}. A classifier trains on class folders "
                 "(train/CLASS/, val/CLASS/), a segmentation model on images/ with masks/")


def data_task(kind: str) -> str | None:
    """The task ``--data`` implies: None for fake (either, by the model's output)."""
    if kind in ("digits", "shapes"):
        return "classification" if kind == "digits" else "segmentation"
    if kind == "fake":
        return None
    root = Path(kind)
    if not root.is_dir() or not is_mask_folder(root):
        _refuse_detection(kind)  # a YOLO or COCO data set given to a classifier or segmentation model
    if not root.is_dir():
        raise UsageError(f"--data must be 'digits', 'fake', 'shapes' or a folder, got '{kind}'")
    return "segmentation" if is_mask_folder(root) else "classification"


def make_datasets(kind: str, shape: tuple[int, ...], seed: int, fake_size: int = 512, task: str = "classification",
                  sizes: tuple[int, int] = (512, 128), classes: int = 10) -> tuple[Dataset[Any], Dataset[Any], int]:
    """(train, validation, number of classes) for ``--data``; ``sizes`` are shapes' train and val images,
    ``classes`` the number of classes of fake masks."""
    if task == "segmentation":
        if kind == "shapes":
            return _shapes(shape, seed, sizes[0]), _shapes(shape, seed + 1_000_003, sizes[1]), len(SHAPE_CLASSES)
        if kind == "fake":
            return (_fake_masks(shape, seed, fake_size, classes),
                    _fake_masks(shape, seed + 1, max(fake_size // 5, 1), classes), classes)
        return _mask_folder(Path(kind), shape, seed)
    if kind == "digits":
        return _digits(shape, seed)
    if kind == "fake":
        return _fake(shape, fake_size)
    root = Path(kind)
    _refuse_detection(kind)
    if not root.is_dir():
        raise UsageError(f"--data must be 'digits', 'fake', 'shapes' or a folder, got '{kind}'")
    return _folder(root, shape)


def class_names(kind: str, train: Any, classes: int) -> list[str]:
    """Names for a run's classes (run.json; `archc predict` prints them)."""
    if kind == "shapes":
        return list(SHAPE_CLASSES)
    return list(getattr(train, "classes", None) or [str(i) for i in range(classes)])


def describe(kind: str, shape: tuple[int, ...], train: Any, val: Any, classes: int) -> str:
    """One line saying how the data are fitted to the spec's input ``shape``."""
    size = "x".join(map(str, shape[1:]))
    how = {"digits": f"scikit-learn's 8x8 grey digits resized to {size}"
                     + (", repeated to 3 channels" if shape[0] == 3 else ""),
           "fake": f"random {'x'.join(map(str, shape))} images",
           "shapes": f"synthetic {'x'.join(map(str, shape))} circles, rectangles and triangles"}.get(
        kind, f"{kind}, read as {'grey' if shape[0] == 1 else 'RGB'} and fitted to {size}")
    return f"data: {how}; {len(train)} training and {len(val)} validation images, {classes} classes"


# ---- segmentation -------------------------------------------------------------------------------

SHAPE_CLASSES = ("background", "circle", "rectangle", "triangle")


def _texture(c: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """A smooth random field plus stripes: (c, h, w) around 0."""
    from torch.nn import functional as F

    coarse = torch.rand(1, c, max(h // 8, 2), max(w // 8, 2), generator=g) - 0.5
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    angle, freq = torch.rand(2, generator=g) * torch.tensor([math.pi, 0.6]) + torch.tensor([0.0, 0.2])
    stripes = 0.15 * torch.sin(freq * (xx * torch.cos(angle) + yy * torch.sin(angle)))
    return 0.6 * smooth + stripes


def shapes_image(c: int, h: int, w: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One synthetic image (c, h, w) in [0, 1] and its mask (h, w): 1 to 4 circles, rectangles and
    triangles of random size, colour and texture over a textured, noisy background; later shapes
    occlude earlier ones (the mask shows what is visible)."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    base = torch.rand(c, 1, 1, generator=g) * 0.6 + 0.2
    image = base + _texture(c, h, w, g) * 0.5
    mask = torch.zeros(h, w, dtype=torch.long)
    side = min(h, w)
    for _ in range(int(torch.randint(1, 5, (1,), generator=g))):
        kind = int(torch.randint(1, 4, (1,), generator=g))
        r, cy, cx, turn, sign = torch.rand(5, generator=g).tolist()
        r = side * (0.15 + 0.15 * r)
        inside = shape_inside(kind - 1, yy - cy * h, xx - cx * w, r, turn * 2 * math.pi)  # kinds 1-3 here
        contrast = (0.25 + 0.35 * torch.rand(c, 1, 1, generator=g)) * (1 if sign > 0.5 else -1)
        fill = base + contrast + _texture(c, h, w, g) * 0.25
        image = torch.where(inside, fill, image)
        mask[inside] = kind
    image = image + 0.08 * torch.randn(c, h, w, generator=g)
    return image.clamp(0, 1), mask


def _shapes(shape: tuple[int, ...], seed: int, count: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    pairs = [shapes_image(shape[0], shape[1], shape[2], g) for _ in range(count)]
    return TensorDataset((torch.stack([p[0] for p in pairs]) - 0.5) / 0.5, torch.stack([p[1] for p in pairs]))


def _fake_masks(shape: tuple[int, ...], seed: int, count: int, classes: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(count, *shape, generator=g),
                         torch.randint(0, classes, (count, *shape[1:]), generator=g))


def is_mask_folder(root: Path) -> bool:
    """``images/`` and ``masks/`` at the top, or in both ``train/`` and ``val/``."""
    return ((root / "images").is_dir() and (root / "masks").is_dir()) or all(
        (root / s / "images").is_dir() and (root / s / "masks").is_dir() for s in ("train", "val"))


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) by stem; a missing mask or a mask without image is an error before training."""
    images = {p.stem: p for p in sorted((root / "images").iterdir()) if p.suffix.lower() in _IMAGE_SUFFIXES}
    masks = {p.stem: p for p in sorted((root / "masks").iterdir()) if p.suffix.lower() == ".png"}
    if not images:
        raise UsageError(f"--data {root}: no images in {root / 'images'}",
                         hint="images/NAME.png (or .jpg) and masks/NAME.png, same names")
    for what, have, other in (("mask", images, masks), ("image", masks, images)):
        lost = [s for s in have if s not in other]
        if lost:
            where = "masks" if what == "mask" else "images"
            raise UsageError(f"--data {root}: no {what} for {len(lost)} file(s): {', '.join(lost[:5])}"
                             f"{' ...' if len(lost) > 5 else ''} (looked in {root / where})",
                             hint="each images/NAME.* needs masks/NAME.png of the same size, and back")
    return [(images[s], masks[s]) for s in images]


def read_mask(path: Path) -> torch.Tensor:
    """A mask PNG as class indices (h, w): grey (L) or palette (P) values are the classes."""
    from PIL import Image

    with Image.open(path) as m:
        if m.mode not in ("L", "P", "1"):
            raise UsageError(f"{path}: a {m.mode} mask; masks hold one class index per pixel",
                             hint="save masks as grey (mode L) or palette (mode P) PNGs whose values are classes")
        values = torch.tensor(bytearray(m.convert("L").tobytes() if m.mode == "1" else m.tobytes()))
        return (values // (255 if m.mode == "1" else 1)).long().reshape(m.height, m.width)


class MaskFolder(Dataset[Any]):
    """Image/mask pairs, resized to the training size (masks by nearest neighbour); with ``augment``
    (training) each pair is scaled/cropped and flipped together. Every pair is read once when made,
    so bad data stops before training."""

    def __init__(self, pairs: list[tuple[Path, Path]], shape: tuple[int, ...], augment: bool) -> None:
        from PIL import Image
        from torch.nn import functional as F

        self.shape, self.augment, self.max_class = shape, augment, {}
        self.items: list[tuple[torch.Tensor, torch.Tensor]] = []
        for image_path, mask_path in pairs:
            mask = read_mask(mask_path)
            with Image.open(image_path) as im:
                if (im.height, im.width) != tuple(mask.shape):
                    raise UsageError(f"{image_path} is {im.width}x{im.height} but its mask {mask_path} is "
                                     f"{mask.shape[1]}x{mask.shape[0]}", hint="a mask has its image's size")
                x = image_tensor(im, shape[0], image_path)
            x = F.interpolate(x[None], size=shape[1:], mode="bilinear", align_corners=False)[0]
            y = F.interpolate(mask[None, None].float(), size=shape[1:], mode="nearest")[0, 0].long()
            self.max_class[str(mask_path)] = int(mask.max())
            self.items.append((x, y))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.items[i]
        if not self.augment:
            return x, y
        x, y = scale_crop(x, y)
        if bool(torch.rand(()) < 0.5):  # the same flip for image and mask
            x, y = x.flip(-1), y.flip(-1)
        return x, y


def scale_crop(x: torch.Tensor, y: torch.Tensor, area: tuple[float, float] = (0.5, 1.0)
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random crop (a share ``area`` of the image, aspect 3/4 to 4/3) of image (c, h, w) and mask
    (h, w), scaled back to (h, w): the image bilinear, the mask by nearest neighbour (classes stay classes)."""
    from torch.nn import functional as F

    h, w = y.shape
    share = float(torch.empty(()).uniform_(*area))
    aspect = math.exp(float(torch.empty(()).uniform_(math.log(3 / 4), math.log(4 / 3))))
    ch, cw = min(h, max(round(h * math.sqrt(share / aspect)), 1)), min(w, max(round(w * math.sqrt(share * aspect)), 1))
    top, left = int(torch.randint(0, h - ch + 1, ())), int(torch.randint(0, w - cw + 1, ()))
    x = F.interpolate(x[None, :, top:top + ch, left:left + cw], size=(h, w), mode="bilinear", align_corners=False)[0]
    crop = y[None, None, top:top + ch, left:left + cw].float()
    return x, F.interpolate(crop, size=(h, w), mode="nearest")[0, 0].long()


def image_tensor(image: Any, channels: int, path: Any, kind: str = "folder") -> torch.Tensor:
    """A Pillow image as a normalised (channels, h, w) tensor; its channels must be the model's."""
    x = image_uint8(image, channels, path).float() / 255.0
    mean, std = normalisation(kind, channels)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def image_uint8(image: Any, channels: int, path: Any) -> torch.Tensor:
    """A Pillow image as a (channels, h, w) uint8 tensor. As image folders are read for training, a 1-channel
    model takes any image as grey and a 3-channel model any image as RGB (grey repeated, alpha dropped);
    other channel counts must match the image's."""
    from torchvision.transforms.functional import pil_to_tensor

    bands = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "RGBA": 4, "CMYK": 4}
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("1", "I", "I;16", "F"):
        image = image.convert("L")
    if channels in (1, 3) and image.mode in bands:
        image = image.convert("L" if channels == 1 else "RGB")  # training's Grayscale(1) / convert("RGB")
    have = bands.get(image.mode)
    if have != channels:
        raise UsageError(f"{path}: a {image.mode} image ({have or '?'} channel(s)), but the model takes {channels}",
                         hint=("convert it to grey first (e.g. Pillow's .convert('L'))" if channels == 1 else
                               f"give {channels}-channel images (e.g. Pillow's .convert('RGB'))"
                               if channels == 3 else f"give {channels}-channel images"))
    return pil_to_tensor(image)


def normalisation(kind: str, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std a run's images were normalised with (ImageNet's for RGB image folders)."""
    if kind not in ("digits", "fake", "shapes") and channels == 3:
        return MEAN, STD
    return (0.5,) * channels, (0.5,) * channels


DIGITS_SIZE = (8, 8)  # scikit-learn's digits


def data_config(kind: str, shape: tuple[int, ...], task: str = "classification") -> dict[str, Any]:
    """How a run's validation images were made from the data, stored in run.json (`data_config`) and repeated by
    `archc predict`: timm's pretrained_cfg keys (input_size, interpolation, mean, std, crop_pct, crop_mode) plus
    ``channels`` (every image read as grey or as RGB, as training did), ``antialias``, ``resize_size`` (the
    shorter side before a centre crop), ``source_size`` (digits: the data's own 8x8, which training scaled up:
    a digit image of any size is first brought back to it, so a nearest-upscaled digit reads as training's) and
    ``background`` (digits: dark; `prepare` inverts an image with a light border)."""
    c, h, w = shape[0], shape[1], shape[2]
    mean, std = normalisation(kind, c)
    folder = kind not in ("digits", "fake", "shapes") and task == "classification"
    config: dict[str, Any] = {
        "input_size": [c, h, w], "interpolation": "bilinear", "antialias": folder, "mean": list(mean), "std": list(std),
        "crop_pct": round(224 / 256, 6) if folder else 1.0, "crop_mode": "center" if folder else "none",
        "channels": {1: "grey", 3: "rgb"}.get(c, "as is")}
    if folder:
        config["resize_size"] = _resize_size((h, w))
    if kind == "digits":  # scikit-learn's digits: ink bright (16) on a dark (0) background
        config |= {"source_size": list(DIGITS_SIZE), "background": "dark"}
    return config


def _light_background(x: torch.Tensor) -> bool:
    """Whether a uint8 image (C, H, W) has a light border (its outermost pixels average over half the range)."""
    border = torch.cat([x[:, 0, :], x[:, -1, :], x[:, :, 0], x[:, :, -1]], dim=1).float()
    return float(border.mean()) > 127.5


def prepare(image: Any, config: dict[str, Any], path: Any, notes: list[str] | None = None) -> torch.Tensor:
    """A Pillow image as the model's normalised input (C, H, W), made as the run's validation images were
    (``config``: `data_config`'s keys). A run trained on a dark background (digits) given a light one (dark ink on
    white paper) gets the image inverted, said in ``notes``."""
    from torch.nn import functional as F
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    c, h, w = config["input_size"]
    x = image_uint8(image, c, path)  # grey or RGB, as training read the images
    if config.get("background") == "dark" and _light_background(x):
        x = 255 - x
        if notes is not None:
            notes.append("inverted: a light background, and the model was trained on light ink on dark")
    mode = InterpolationMode(config.get("interpolation", "bilinear"))
    if config.get("crop_mode") == "center":  # as training's Resize + CenterCrop, on the uint8 image
        pil = TF.to_pil_image(x)
        pil = TF.center_crop(TF.resize(pil, config.get("resize_size", _resize_size((h, w))), mode), [h, w])
        x = TF.pil_to_tensor(pil)
    y = x.float()[None] / 255.0
    if config.get("source_size") and list(y.shape[2:]) != list(config["source_size"]):
        y = F.interpolate(y, size=tuple(config["source_size"]), mode="area")  # back to the data's own size
    if list(y.shape[2:]) != [h, w]:
        smooth = mode.value in ("bilinear", "bicubic")
        y = F.interpolate(y, size=(h, w), mode=mode.value, align_corners=False if smooth else None,
                          antialias=smooth and bool(config.get("antialias")))
    mean, std = torch.tensor(config["mean"])[:, None, None], torch.tensor(config["std"])[:, None, None]
    return (y[0] - mean) / std


def _mask_folder(root: Path, shape: tuple[int, ...], seed: int) -> tuple[Dataset[Any], Dataset[Any], int]:
    if (root / "train" / "images").is_dir():
        train, val = MaskFolder(_pairs(root / "train"), shape, True), MaskFolder(_pairs(root / "val"), shape, False)
    else:
        pairs = _pairs(root)
        if len(pairs) < 2:
            raise UsageError(f"--data {root}: {len(pairs)} image; at least 2 are needed to keep one for validation")
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
        cut = max(len(pairs) - max(len(pairs) // 5, 1), 1)
        train = MaskFolder([pairs[i] for i in order[:cut]], shape, True)
        val = MaskFolder([pairs[i] for i in order[cut:]], shape, False)
    return train, val, max(max(train.max_class.values()), max(val.max_class.values())) + 1


def check_mask_classes(datasets: tuple[Any, ...], classes: int) -> None:
    """Every mask value must be a class the model scores (0 to classes - 1)."""
    for ds in datasets:
        for path, top in getattr(ds, "max_class", {}).items():
            if top >= classes:
                raise UsageError(f"{path}: mask value {top}, but the model scores {classes} classes (0 to "
                                 f"{classes - 1})", hint="set num_classes (--set num_classes=N) or fix the mask")
