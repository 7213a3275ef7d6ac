# fairness_bench (fairness.csv, fairness-latency.csv): the victim's latency
# alone and next to each neighbour, and the compute time the agent charged
# each slot.
# gnuplot -e "results='bench/results'" bench/plots/fairness.gp
if (!exists("results")) results = "bench/results"
csv = results."/fairness.csv"
lcsv = results."/fairness-latency.csv"
set datafile separator ","
set terminal pngcairo size 1300,560 noenhanced font ",11"
set output results."/fairness.png"
set multiplot layout 1,2 title "One device, two slots: a one-client victim (s1, SqueezeNet batch 1) next to a neighbour (s0)"

set title "victim latency\n(box p25-p75, line p50, whiskers p1-p99)"
set style boxplot fraction 0.98 nooutliers
set style data boxplot
set style fill solid 0.35 border -1
set boxwidth 0.5
set grid ytics
unset key
set xtics ("alone" 1, "16 clients x batch 1" 2, "8 clients x batch 32" 3) scale 0
set xrange [0.4:3.6]
set ylabel "latency, ms (log scale)"
set logscale y
sel(name, v) = strcol(1) eq name ? v : NaN
plot lcsv skip 1 using (1):(sel("alone", $2)) lc rgb "#2ca02c", \
     lcsv skip 1 using (2):(sel("16x1", $2)) lc rgb "#1f77b4", \
     lcsv skip 1 using (3):(sel("8x32", $2)) lc rgb "#ff7f0e"
unset logscale y

set title "compute time charged per slot\n(kubeaccel_agent_compute_seconds_total over the window)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.6 border -1
set boxwidth 0.9
set key top left
set xtics ("16 clients x batch 1" 0, "8 clients x batch 32" 1) scale 0
set xrange [-0.6:1.6]
set yrange [0:*]
set ylabel "seconds"
plot "< awk -F, '$1 != \"alone\" && $2 == \"s1-victim\" {print $9}' ".csv title "victim (s1)" lc rgb "#1f77b4", \
     "< awk -F, '$1 != \"alone\" && $2 == \"s0-neighbour\" {print $9}' ".csv title "neighbour (s0)" lc rgb "#d62728"
unset multiplot
