#!/usr/bin/env python3
"""Peer for the loader benchmark: PyTorch's DataLoader over the same photos as JPEG files,
decoded with PIL and transformed with torchvision as the issue specifies: Resize(256),
RandomCrop(227), RandomHorizontalFlip, ToTensor, Normalize (ImageNet), batch 128, shuffled,
num_workers=N. Streams whole epochs until at least --images images and prints one JSON line
(images/s over all batches, and after the first batch to leave out worker start-up).

    python3 tools/bench/torch_loader.py data/bench/photos2k --workers 2 --images 6000
"""
import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class Photos(Dataset):
    def __init__(self, root: Path):
        self.paths = sorted(p for p in root.rglob("*.jpg"))
        classes = sorted({p.parent.name for p in self.paths})
        self.labels = [classes.index(p.parent.name) for p in self.paths]
        self.transform = transforms.Compose([
            transforms.Resize(256),
            transforms.RandomCrop(227),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(Image.open(self.paths[i]).convert("RGB")), self.labels[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images_dir", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=6000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    loader = DataLoader(Photos(args.images_dir), batch_size=args.batch, shuffle=True, drop_last=True,
                        num_workers=args.workers, persistent_workers=True)
    start = time.perf_counter()
    first = None
    images = 0
    while images < args.images:
        for x, _ in loader:
            images += x.shape[0]
            if first is None:
                first = (time.perf_counter(), images)
    end = time.perf_counter()
    print(json.dumps({"peer": "torch DataLoader", "workers": args.workers, "images": images,
                      "seconds": round(end - start, 3), "images_per_s": round(images / (end - start), 1),
                      "images_per_s_after_first_batch": round((images - first[1]) / (end - first[0]), 1)}))


if __name__ == "__main__":
    main()
