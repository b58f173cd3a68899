"""Write the shipped digits as a folder of colour PNGs, one subfolder per class: a real --image-folder
to try the trainer's own-images path on (README, "Your own images"; docs/usage.md).

    python scripts/colour_digits.py runs/colour-digits [--n 10000] [--seed 0]

Each digit is drawn in a colour of its own (ink = its grey level times a random RGB in [0.3, 1]^3, on
black), 28 x 28, into DIR/zero/, DIR/one/, ... DIR/nine/.
"""
import argparse
import os

import numpy as np
from PIL import Image

from dcgan_mnist import data

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="folder to create")
    p.add_argument("--n", type=int, default=10000, help="how many of the shipped digits (default: all 10,000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the colours")
    args = p.parse_args()
    shipped = data.load_shipped()
    images, labels = shipped.train_images[:args.n], shipped.train_labels[:args.n]
    colours = np.random.default_rng(args.seed).uniform(0.3, 1.0, size=(len(images), 1, 1, 3))
    tinted = np.round(images[..., None] * colours).astype(np.uint8)
    for name in NAMES:
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
    for i, (image, label) in enumerate(zip(tinted, labels)):
        Image.fromarray(image).save(os.path.join(args.out, NAMES[label], f"{i:05d}.png"))
    print(f"wrote {len(images)} colour digits in {len(NAMES)} classes to {args.out}/")


if __name__ == "__main__":
    main()
