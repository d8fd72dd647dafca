"""``tabcli export``: a trained run as one self-contained model that takes the table's raw
columns, with the fitted preprocessing inside the graph."""
