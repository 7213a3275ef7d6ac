# The agent's figures side by side (agent-latency.csv, agent-throughput.csv):
# latency distributions of in-process OpenCV DNN, the slot socket with raw
# contents and with shared memory, for SqueezeNet and the tiny model, and the
# throughput of concurrent clients per round.
# gnuplot -e "results='bench/results'" bench/plots/agent-latency.gp
if (!exists("results")) results = "bench/results"
csv = results."/agent-latency.csv"
tcsv = results."/agent-throughput.csv"
set datafile separator ","
set terminal pngcairo size 1500,600 noenhanced font ",11"
set output results."/agent-latency.png"

# Boxes: 25th-75th percentile and median; whiskers: 1st-99th percentile (the
# samples beyond are in agent-latency.csv; drawn, thousands of them hide the boxes).
set style boxplot fraction 0.98 nooutliers
set style data boxplot
set style fill solid 0.35 border -1
set boxwidth 0.5
set grid ytics
unset key
set xtics ("in-process" 1, "socket, raw" 2, "socket, shm" 3) scale 0
set xrange [0.4:3.6]
sel(model, mode, v) = (strcol(1) eq model && strcol(2) eq mode) ? v : NaN

set multiplot layout 1,3 title "kubeaccel-agent against OpenCV DNN in process, same model file and input"

set title "SqueezeNet, batch 1, one client\n(box p25-p75, line p50, whiskers p1-p99)"
set ylabel "latency, ms"
set yrange [0:*]
set offsets 0, 0, graph 0.05, 0
plot csv skip 1 using (1):(sel("squeezenet", "in-process", $4 / 1000)) lc rgb "#2ca02c", \
     csv skip 1 using (2):(sel("squeezenet", "socket-raw", $4 / 1000)) lc rgb "#1f77b4", \
     csv skip 1 using (3):(sel("squeezenet", "socket-shm", $4 / 1000)) lc rgb "#ff7f0e"

set title "tiny model (overhead of a small request), one client\nsocket raw / shm, and ServerLive: the floor of any gRPC call"
set offsets 0, 0, 0, 0
set ylabel "latency, us (log scale)"
set logscale y
set yrange [1:*]
set xtics ("in-process" 1, "raw" 2, "shm" 3, "ServerLive" 4) scale 0
set xrange [0.4:4.6]
plot csv skip 1 using (1):(sel("tiny", "in-process", $4)) lc rgb "#2ca02c", \
     csv skip 1 using (2):(sel("tiny", "socket-raw", $4)) lc rgb "#1f77b4", \
     csv skip 1 using (3):(sel("tiny", "socket-shm", $4)) lc rgb "#ff7f0e", \
     csv skip 1 using (4):(sel("tiny", "server-live", $4)) lc rgb "#7f7f7f"
unset logscale y
set xtics ("in-process" 1, "socket, raw" 2, "socket, shm" 3) scale 0
set xrange [0.4:3.6]

stats tcsv skip 1 using 3 nooutput
clients = int(STATS_max)
stats tcsv skip 1 using 2 nooutput
rounds = STATS_max > 0 ? STATS_max : 1
do for [m in "in-process socket-raw socket-shm"] {
  stats tcsv skip 1 using (strcol(1) eq m ? $7 : NaN) nooutput
  x = m eq "in-process" ? 1 : m eq "socket-raw" ? 2 : 3
  set arrow from x - 0.3, STATS_median to x + 0.3, STATS_median nohead lw 3 lc rgb "#d62728" front
}
set title sprintf("SqueezeNet throughput, %d concurrent clients\n(dots: interleaved rounds, bar: median)", clients)
set ylabel "images/s"
set yrange [0:*]
set style data points
plot tcsv skip 1 using ((strcol(1) eq "in-process" ? 1 : strcol(1) eq "socket-raw" ? 2 : 3) + 0.4 * ($2 / rounds - 0.5)):7 \
       with points pt 7 ps 1.2 lc rgb "#555555"
unset multiplot
