"""``tabcli batch``: many experiments unattended, a leaderboard, gates and a JUnit report for CI.

plan (which runs) -> runner (isolated processes, in parallel) -> leaderboard -> gates -> junit.
"""
