"""Benchmarks installed with the package (``ir2i bench``); their heavy dependencies
(scipy, matplotlib, codec plugins) come with the ``[bench]`` extra and are imported only
when a benchmark runs."""
