"""``python -m pyr``: the ``pyr`` command line."""

if __name__ == "__main__":
    from pyr.cli import main

    raise SystemExit(main())
