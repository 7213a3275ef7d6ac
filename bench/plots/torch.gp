# torch_bench (torch-latency.csv): ResNet-50 through the socket, torch backend
# vs opencv-cpu, and SqueezeNet through the socket vs libtorch in process.
# gnuplot -e "results='bench/results'" bench/plots/torch.gp
if (!exists("results")) results = "bench/results"
csv = results."/torch-latency.csv"
set datafile separator ","
set terminal pngcairo size 1200,520 noenhanced font ",11"
set output results."/torch.png"
set style boxplot fraction 0.98 nooutliers
set style data boxplot
set style fill solid 0.35 border -1
set boxwidth 0.5
set grid ytics
unset key
set yrange [0:*]
set ylabel "latency, ms"
sel(fig, side, v) = (strcol(1) eq fig && strcol(2) eq side) ? v : NaN
set multiplot layout 1,2 title "torch backend, batch 1 (box p25-p75, line p50, whiskers p1-p99)"
set title "ResNet-50 through the slot socket"
set xtics ("torch" 1, "opencv-cpu" 2) scale 0
set xrange [0.4:2.6]
plot csv skip 1 using (1):(sel("resnet50_b1_socket", "torch", $3)) lc rgb "#1f77b4", \
     csv skip 1 using (2):(sel("resnet50_b1_socket", "opencv-cpu", $3)) lc rgb "#ff7f0e"
set title "SqueezeNet 1.1"
set xtics ("torch, socket" 1, "libtorch in process" 2) scale 0
plot csv skip 1 using (1):(sel("squeezenet_b1", "torch_socket", $3)) lc rgb "#1f77b4", \
     csv skip 1 using (2):(sel("squeezenet_b1", "libtorch_in_process", $3)) lc rgb "#2ca02c"
unset multiplot
