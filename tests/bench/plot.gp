# plot.gp - throughput by configuration and concurrency, from run.sh's
# plot.dat (columns: configuration, msg/s at each -s, ratio at each -s).
# Usage: gnuplot -e "datafile='plot.dat'; outfile='throughput.png'; ncols=4; title_text='...'" plot.gp
if (!exists("datafile")) datafile = 'plot.dat'
if (!exists("outfile")) outfile = 'throughput.png'
if (!exists("title_text")) title_text = 'mxgate under Postfix: smtp-source -l 5120, one message per session'

set terminal pngcairo size 1200,640 font ",10"
set output outfile
set title title_text
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right autotitle columnheader
set ylabel "messages per second (median of rounds)"
set yrange [0:*]
set grid ytics
set xtics rotate by -30 nomirror
set datafile separator "\t"
# Columns 2..ncols are one concurrency each; column 1 names the configuration.
if (!exists("ncols")) ncols = 4
plot for [i=2:ncols] datafile using i:xtic(1) title columnheader(i)
