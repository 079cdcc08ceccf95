#!/usr/bin/env python3
"""Writes caffe/imgcodec/testdata: JPEGs and PNGs with OpenCV's decodes.

For each source image NAME (.jpg or .png) OpenCV (opencv-python-headless)
writes NAME.color.png (cv2.IMREAD_COLOR, BGR stored as PNG's RGB order is
irrelevant: the test reads the PNG's channels back as OpenCV wrote them)
and NAME.gray.png (cv2.IMREAD_GRAYSCALE), and resize.png (cv2.resize
INTER_LINEAR of colour444.jpg's decode to 29x21). Run from the repository
root:
  .venv-data/bin/pip install opencv-python-headless numpy
  .venv-data/bin/python scripts/gen_image_fixtures.py
"""
import cv2
import numpy as np

OUT = "caffe/imgcodec/testdata/"


def scene(h, w):
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, w - 1))
    img[..., 1] = (y * 255 // max(1, h - 1))
    img[..., 2] = ((x + y) * 7) % 256
    cv2.circle(img, (w // 3, h // 2), min(h, w) // 4, (20, 200, 40), -1)
    cv2.rectangle(img, (w // 2, 2), (w - 3, h // 3), (250, 30, 200), -1)
    rng = np.random.default_rng(1)
    noise = rng.integers(-20, 21, size=img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def main():
    img = scene(33, 47)
    files = {}
    for name, sf in (("colour420", cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420),
                     ("colour422", cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422),
                     ("colour444", cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444)):
        ok, b = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sf])
        files[name + ".jpg"] = b.tobytes()
    ok, b = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    files["gray.jpg"] = b.tobytes()
    ok, b = cv2.imencode(".png", img)
    files["colour.png"] = b.tobytes()
    for name, data in files.items():
        open(OUT + name, "wb").write(data)
        arr = np.frombuffer(data, np.uint8)
        cv2.imwrite(OUT + name + ".color.png", cv2.imdecode(arr, cv2.IMREAD_COLOR))
        cv2.imwrite(OUT + name + ".gray.png", cv2.imdecode(arr, cv2.IMREAD_GRAYSCALE))
    dec = cv2.imdecode(np.frombuffer(files["colour444.jpg"], np.uint8), cv2.IMREAD_COLOR)
    cv2.imwrite(OUT + "resize.png", cv2.resize(dec, (29, 21), interpolation=cv2.INTER_LINEAR))
    print("opencv", cv2.__version__)


if __name__ == "__main__":
    main()
