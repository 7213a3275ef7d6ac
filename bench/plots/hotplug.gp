# CDF of hotplug -> ListAndWatch latency (hotplug.csv), log-scale x, next to
# 5 s polling. gnuplot -e "results='bench/results'" bench/plots/hotplug.gp
if (!exists("results")) results = "bench/results"
csv = results."/hotplug.csv"
set datafile separator ","
set terminal pngcairo size 1000,680 noenhanced font ",11"
set output results."/hotplug.png"

stats csv skip 1 using ((strcol(1) eq "uevent" && $6 == 1) ? 1 : 0) nooutput
n_uevent = STATS_sum
stats csv skip 1 using ((strcol(1) eq "testbed" && $6 == 1) ? 1 : 0) nooutput
n_testbed = STATS_sum

set title "kubeaccel-plugin: hotplug to ListAndWatch message (CDF)"
set logscale x
set xrange [0.5:10000]
set yrange [0:1.02]
set xlabel "latency, ms (log scale)"
set ylabel "fraction of events"
set grid xtics ytics mxtics
set key below left vertical Left reverse
set samples 1000
set arrow 1 from 10, graph 0 to 10, graph 1 nohead dt 2 lc rgb "red"
set label 1 "target: p99 < 10 ms" at 11, 0.3 tc rgb "red"
set arrow 2 from 0.5, 0.99 to 10000, 0.99 nohead dt 3 lc rgb "gray"
set label 2 "p99" at 0.55, 0.965 tc rgb "gray"
poll(x) = x < 5000 ? x / 5000.0 : 1

plot csv skip 1 using 4:((strcol(1) eq "uevent" && $6 == 1) ? 1.0 / n_uevent : 0) smooth cumulative \
       lw 2 lc rgb "#1f77b4" title sprintf("uevent -> ListAndWatch (n=%d)", n_uevent), \
     csv skip 1 using 4:((strcol(1) eq "testbed" && $6 == 1) ? 1.0 / n_testbed : 0) smooth cumulative \
       lw 2 lc rgb "#ff7f0e" title sprintf("plug()/unplug() -> ListAndWatch, incl. umockdev's sysfs work (n=%d)", n_testbed), \
     poll(x) with lines lw 2 dt 4 lc rgb "#555555" title "5 s polling (uniform 0-5 s: mean 2.5 s, p99 4.95 s)"
