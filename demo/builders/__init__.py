"""Row builders, one module per app the rows go to.

Each ``plan_*`` function appends rows to a ``demo.plan.SeedPlan``, drawing from the one
RNG ``demo.plan.build_plan`` passes in; the order of the calls there is part of what
makes a run reproducible.
"""
