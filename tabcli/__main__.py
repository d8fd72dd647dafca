"""``python -m tabcli``: the same as the ``tabcli`` command."""

from tabcli.cli import main

main()
