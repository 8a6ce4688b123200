"""Test host laid out as a cPanel server, with a cPanel simulator (issue 10, part 3)."""
