"""notify-svc: everything that leaves the system (docs/ARCHITECTURE.md, "notify-svc")."""
