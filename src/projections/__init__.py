"""Read models fed from the event log, and the as-at queries over them."""
