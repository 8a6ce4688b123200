"""cPanel simulator that runs INSIDE a test host (copied to /usr/local/cpanel/sim/cpsim).

Standard library only: the test image has python3 and nothing else of Python. Every fact
it imitates cites its section of /work/shared/reference/panels.md (A1..A13, C2.n).
"""
