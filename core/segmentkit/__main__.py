"""``python -m segmentkit``: the command line."""

from segmentkit.cli import main

main()
