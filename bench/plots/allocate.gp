# CDF of Allocate / GetPreferredAllocation round trips (allocate.csv).
# gnuplot -e "results='bench/results'" bench/plots/allocate.gp
if (!exists("results")) results = "bench/results"
csv = results."/allocate.csv"
set datafile separator ","
set terminal pngcairo size 1000,680 noenhanced font ",11"
set output results."/allocate.png"

stats csv skip 1 using (strcol(1) eq "allocate" ? 1 : 0) nooutput
n_a = STATS_sum
stats csv skip 1 using (strcol(1) eq "preferred" ? 1 : 0) nooutput
n_p = STATS_sum
stats csv skip 1 using (strcol(1) eq "allocate_via_standin" ? 1 : 0) nooutput
n_s = STATS_sum

set title "kubeaccel-plugin: unary round trips over the plugin's Unix socket (CDF)"
set logscale x
set xrange [10:*]
set yrange [0:1.02]
set xlabel "round trip, us (log scale)"
set ylabel "fraction of calls"
set grid xtics ytics mxtics
set key below left vertical Left reverse
set arrow 1 from 1000, graph 0 to 1000, graph 1 nohead dt 2 lc rgb "red"
set label 1 "target: Allocate p99 < 1 ms" at 950, 0.5 right tc rgb "red"
set arrow 2 from graph 0, first 0.99 to graph 1, first 0.99 nohead dt 3 lc rgb "gray"

plot csv skip 1 using 3:(strcol(1) eq "allocate" ? 1.0 / n_a : 0) smooth cumulative lw 2 \
       title sprintf("Allocate, one channel (n=%d)", n_a), \
     csv skip 1 using 3:(strcol(1) eq "preferred" ? 1.0 / n_p : 0) smooth cumulative lw 2 \
       title sprintf("GetPreferredAllocation, one channel (n=%d)", n_p), \
     csv skip 1 using 3:(strcol(1) eq "allocate_via_standin" ? 1.0 / n_s : 0) smooth cumulative lw 2 dt 2 \
       title sprintf("Allocate via the kubelet stand-in, new stub per call (n=%d)", n_s)
