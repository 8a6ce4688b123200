"""The engine: turns "target X under playbook P since T, hold H" into applied steps.

engine (the Engine: input checks, connections, stages, tick, replies), account_verbs
(suspend and unsuspend of one account), runner (a stage's steps with journal intent and
done, rollback, revert, recovery of a run cut off) and step_run (one step in phases),
records (the server's own copy of each case) and recovery (journal and records kept in
step), outcome (what a verb replies), ladder (`plan`), checks (`check`), schedule (when a
failed stage is tried again), locks (one run per target); a reseller's tree: tree_verbs
(its verbs), batch (the tree as one case with a child per account), batch_open,
batch_stage, batch_lift and batch_report (opening the children, a stage, the lift and the
reply).
"""
