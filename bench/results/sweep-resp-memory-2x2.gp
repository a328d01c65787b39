$s0 << EOD
16 32240.0 160255
256 34032.0 214527
EOD
$s1 << EOD
16 24537.6 365567
256 49987.2 145919
EOD
set terminal pngcairo size 900,560
set output 'bench/results/sweep-resp-memory-2x2-throughput.png'
set title 'rabia-bench sweep: throughput'
set xlabel 'batch-max-reqs'
set ylabel 'requests/s'
set logscale x 2
set grid
set key outside right
set yrange [0:*]
unset arrow
plot $s0 using 1:2 with linespoints lw 2 title 'timeout 100 us', $s1 using 1:2 with linespoints lw 2 title 'timeout 1000 us'
unset output
set terminal svg size 900,560 dynamic
set output 'bench/results/sweep-resp-memory-2x2-throughput.svg'
set title 'rabia-bench sweep: throughput'
set xlabel 'batch-max-reqs'
set ylabel 'requests/s'
set logscale x 2
set grid
set key outside right
set yrange [0:*]
unset arrow
plot $s0 using 1:2 with linespoints lw 2 title 'timeout 100 us', $s1 using 1:2 with linespoints lw 2 title 'timeout 1000 us'
unset output
set terminal pngcairo size 900,560
set output 'bench/results/sweep-resp-memory-2x2-p99.png'
set title 'rabia-bench sweep: p99'
set xlabel 'batch-max-reqs'
set ylabel 'p99 latency (us)'
set logscale x 2
set grid
set key outside right
set yrange [0:*]
set arrow from graph 0, first 200000 to graph 1, first 200000 nohead dt 2 lc rgb 'red'
plot $s0 using 1:3 with linespoints lw 2 title 'timeout 100 us', $s1 using 1:3 with linespoints lw 2 title 'timeout 1000 us'
unset output
set terminal svg size 900,560 dynamic
set output 'bench/results/sweep-resp-memory-2x2-p99.svg'
set title 'rabia-bench sweep: p99'
set xlabel 'batch-max-reqs'
set ylabel 'p99 latency (us)'
set logscale x 2
set grid
set key outside right
set yrange [0:*]
set arrow from graph 0, first 200000 to graph 1, first 200000 nohead dt 2 lc rgb 'red'
plot $s0 using 1:3 with linespoints lw 2 title 'timeout 100 us', $s1 using 1:3 with linespoints lw 2 title 'timeout 1000 us'
unset output
