"""Neural-network denoisers: QRNN3D and MemNet models, training on generated cubes, weights."""

from .memnet import MemNet
from .qrnn3d import QRNN3D, QRNNLayer, qrnn_pool
from .train import NNDenoiser, load_model, save_model, train_qrnn3d

__all__ = [
    "QRNN3D",
    "MemNet",
    "NNDenoiser",
    "QRNNLayer",
    "load_model",
    "qrnn_pool",
    "save_model",
    "train_qrnn3d",
]
