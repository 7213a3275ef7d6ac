# Idle wake-ups per thread of the plugin (idle-wakeups-threads.csv).
# gnuplot -e "results='bench/results'" bench/plots/idle-wakeups.gp
if (!exists("results")) results = "bench/results"
csv = results."/idle-wakeups-threads.csv"
set datafile separator ","
set terminal pngcairo size 1000,500 noenhanced font ",11"
set output results."/idle-wakeups.png"

set title "kubeaccel-plugin at rest: context switches per second, per thread (goal: none periodic)"
set ylabel "wake-ups per second"
set yrange [0:*]
set style fill solid 0.6
set boxwidth 0.7
set grid ytics
set xtics rotate by -30 left
unset key
plot csv skip 1 using 0:4:xtic(sprintf("%s (%s)", strcol(2), strcol(1))) with boxes lc rgb "#1f77b4", \
     csv skip 1 using 0:4:(sprintf("%.2f", $4)) with labels offset 0,0.7
