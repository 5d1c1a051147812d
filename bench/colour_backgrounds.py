"""Background colours of colour-MNIST images or samples (docs/images.md's background counts).

Each pixel of an image's outer frame (2 pixels wide) is matched to the nearest colour of the
palette `ebm data colour-mnist` draws from (src/data/colour.rs); an image has a clean
background when at least 80 % of its frame pixels lie within 0.2 (RMS over the channels, on the
[0, 1] scale) of one palette colour, and that colour is its background. Every test image has
one. With --binary the images and the palette are binarised per channel at 0.5, as `ebm dbm
train --binarize threshold` sees the data (blue and cyan both become (0, 1, 1)): for the pixel
means of `ebm dbm sample`.

    python3 bench/colour_backgrounds.py S.npy [--binary]

S.npy: [N, 3 * 28 * 28] or [N, 3, 28, 28], uint8 (0..255), [0, 1] or [-1, 1] (told apart by
range). Needs numpy only.
"""
import sys
from collections import Counter

import numpy as np

PALETTE = {"black": (0, 0, 0), "white": (255, 255, 255), "red": (230, 25, 75), "green": (60, 180, 75),
           "blue": (0, 130, 200), "yellow": (255, 225, 25), "magenta": (240, 50, 230), "cyan": (70, 240, 240)}


def palette(binary):
    colours = {}
    for name, rgb in PALETTE.items():
        c = tuple(float(v > 127) for v in rgb) if binary else tuple(v / 255 for v in rgb)
        colours.setdefault(c, []).append(name)
    return ["/".join(n) for n in colours.values()], np.array(list(colours), float)


def backgrounds(x, binary=False, near=0.2, share=0.8):
    """(names, counts per name, images without a clean background) of images x [N, 3, 28, 28] on [0, 1]."""
    names, colours = palette(binary)
    frame = np.ones(x.shape[2:], bool)
    frame[2:-2, 2:-2] = False
    pixels = x[:, :, frame].transpose(0, 2, 1)  # [N, frame pixels, 3]
    dist = np.sqrt(((pixels[:, :, None, :] - colours[None, None]) ** 2).mean(-1))
    nearest, close = dist.argmin(-1), dist.min(-1) < near
    counts, unclean = Counter(), 0
    for i in range(len(x)):
        top = Counter(nearest[i][close[i]]).most_common(1)
        if top and top[0][1] >= share * frame.sum():
            counts[names[top[0][0]]] += 1
        else:
            unclean += 1
    return names, counts, unclean


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1 or any(a not in ("--binary",) for a in sys.argv[1:] if a.startswith("--")):
        sys.exit(__doc__)
    x = np.load(args[0]).astype(float)
    if x.ndim == 2:
        x = x.reshape(len(x), 3, 28, 28)
    if x.ndim != 4 or x.shape[1] != 3:
        sys.exit(f"{args[0]}: expected [N, 3*H*W] or [N, 3, H, W] colour images, got {list(x.shape)}")
    x = x / 255 if x.max() > 1.5 else (x + 1) / 2 if x.min() < -0.01 else x
    binary = "--binary" in sys.argv
    if binary:
        x = (x > 0.5).astype(float)
    names, counts, unclean = backgrounds(x, binary)
    n = len(x)
    print(f"{n} images, {1 - unclean / n:.1%} with a clean background: "
          + ", ".join(f"{k} {counts[k] / n:.1%}" for k in names))


if __name__ == "__main__":
    main()
