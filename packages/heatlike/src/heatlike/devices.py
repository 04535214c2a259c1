"""Devices: where each rank's local tensor lives (``ht.cpu``, ``ht.gpu``), and the default."""

from __future__ import annotations

import torch

__all__ = ["Device", "cpu", "get_device", "sanitize_device", "use_device"]


class Device:
    """A device type plus an id; ``torch_device`` is the string torch understands."""

    def __init__(self, device_type: str, device_id: int, torch_device: str):
        self.device_type = device_type
        self.device_id = device_id
        self.torch_device = torch_device

    def __repr__(self) -> str:
        return f"device({self.__str__()!r})"

    def __str__(self) -> str:
        return f"{self.device_type}:{self.device_id}"

    def __eq__(self, other) -> bool:
        if isinstance(other, Device):
            return self.torch_device == other.torch_device
        if isinstance(other, (str, torch.device)):
            try:
                return sanitize_device(other) is self
            except ValueError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.torch_device)


cpu = Device("cpu", 0, "cpu")
_devices = {"cpu": cpu}
if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
    gpu = Device("gpu", 0, f"cuda:{torch.cuda.current_device()}")
    _devices["gpu"] = _devices["cuda"] = gpu
    __all__.append("gpu")
_default = cpu


def get_device() -> Device:
    """The device new arrays go to when none is given."""
    return _default


def sanitize_device(device) -> Device:
    """The Device for ``device`` (a Device, ``"cpu"``, ``"gpu"``/``"cuda"``, a torch.device or
    None for the default)."""
    if device is None:
        return _default
    if isinstance(device, Device):
        return device
    name = str(device).split(":")[0].lower()
    if name not in _devices:
        raise ValueError(f"device must be one of {sorted(_devices)}, got {device!r}")
    return _devices[name]


def use_device(device=None) -> None:
    """Make ``device`` the default for new arrays (``None`` keeps the current one)."""
    global _default
    _default = sanitize_device(device)
