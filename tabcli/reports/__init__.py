"""What evaluate, explain and tune show: PNG plots (one module per kind of display) and HTML parts."""
