"""The checking machinery: differential state machines, model checker, scheduler."""
