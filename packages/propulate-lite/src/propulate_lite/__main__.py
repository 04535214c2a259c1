"""Entry point for `python -m propulate_lite`."""

from propulate_lite.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
