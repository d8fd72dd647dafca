"""``tabcli explain``: attention scores, heatmaps, importance and a report for chosen rows."""
