"""Every public function, class, method and property of the nine packages has a docstring,
which the documentation site shows (tools/docstring_audit.py lists the missing ones)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("docstring_audit", ROOT / "tools/docstring_audit.py")
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)


def test_the_audit_finds_all_nine_packages():
    assert len(audit.PACKAGES) == 9


@pytest.mark.parametrize("package", audit.PACKAGES)
def test_every_public_object_has_a_docstring(package):
    assert audit.undocumented(package) == []
