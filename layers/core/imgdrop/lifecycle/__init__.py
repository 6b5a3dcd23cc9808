"""An image from upload to settled: the status transitions (transitions, the only module that
writes `status`), processing an upload, finalizing a run, and the sweep of stuck images."""
