"""``tabcli batch``: many experiments unattended, a leaderboard, gates and a JUnit report for CI.

plan (which runs) -> shards (which part runs here) -> runner (isolated processes, in parallel)
-> leaderboard -> gates -> junit; ``tabcli batch merge`` reads the shards' folders back into one report.
"""
