# Kubelet restart -> every resource registered again, per restart (restart.csv).
# gnuplot -e "results='bench/results'" bench/plots/restart.gp
if (!exists("results")) results = "bench/results"
csv = results."/restart.csv"
set datafile separator ","
set terminal pngcairo size 1000,500 noenhanced font ",11"
set output results."/restart.png"

set title "kubeaccel-plugin: kubelet restart to registered again (2 resources)"
set xlabel "restart"
set ylabel "ms"
set yrange [0:*]
set grid ytics
set key top right
set arrow 1 from graph 0, first 100 to graph 1, first 100 nohead dt 2 lc rgb "red"
set label 1 "target < 100 ms" at graph 0.01, first 103 tc rgb "red"
plot csv skip 1 using 1:2 with linespoints lw 2 pt 7 title "restart() -> all registered, streams open", \
     csv skip 1 using 1:4 with linespoints lw 1 pt 6 title "of which the stand-in's restart() call", \
     csv skip 1 using 1:5 with linespoints lw 1 pt 4 title "new kubelet.sock -> streams open"
