"""The whole suite run as one application: the demo (`make demo`) and the load / soak run
(`make stress`, `make soak`). They use coin_lio, the model servers and suite_tools together, so
they live above all three; suite_tools, the shared base, imports neither coin_lio nor
learned_nodes."""
