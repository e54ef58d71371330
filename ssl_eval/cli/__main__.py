"""``python -m ssl_eval.cli``: the ``ssl-eval`` console script."""

from ssl_eval.cli import main

if __name__ == "__main__":  # not when a tool walks the package and imports every module
    main()
