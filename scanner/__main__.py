"""`python -m scanner` is `fedscan`."""

from scanner.cli import main

main()
