"""The worker process: claims dispatch entries, runs tasks, records their outcome."""
