# Foldline HLS project: C simulation, C synthesis, C/RTL co-simulation and IP export with
# Vitis HLS or Vivado HLS. Settings of this project (name, top, part, clock, files) are in
# project.tcl, next to this file.
#
#   vitis_hls  -f build_prj.tcl -tclargs "csim=1 synth=1 cosim=0 export=0"
#   vivado_hls -f build_prj.tcl "csim=1 synth=1 cosim=0 export=0"
#
# Steps (key=0|1): reset (start a fresh project), csim, synth, cosim, export; tool=auto|vitis|vivado.
# Each may also be preset as a Tcl variable ::foldline_<key> before sourcing this file, e.g.
#   vitis_hls -eval "set foldline_cosim 0; source build_prj.tcl"
# Arguments override variables; anything without '=' is ignored (the tools pass their own).

array set opt {reset 1 csim 1 synth 1 cosim 1 export 0 tool auto}
foreach key [array names opt] {
    if {[info exists ::foldline_$key]} {
        set opt($key) [set ::foldline_$key]
    }
}
foreach arg [split [join $::argv " "]] {
    if {![regexp {^([A-Za-z_]+)=(.*)$} $arg -> key value]} {
        continue
    }
    if {![info exists opt($key)]} {
        puts "ERROR: unknown option '$key' (known: [lsort [array names opt]])"
        exit 2
    }
    set opt($key) $value
}
foreach key {reset csim synth cosim export} {
    if {$opt($key) ni {0 1}} {
        puts "ERROR: option $key must be 0 or 1, got '$opt($key)'"
        exit 2
    }
}
if {$opt(tool) eq "auto"} {
    if {[info exists ::env(XILINX_HLS)] || [string match -nocase "*vitis*" [info nameofexecutable]]} {
        set opt(tool) vitis
    } else {
        set opt(tool) vivado
    }
}
if {$opt(tool) ni {vitis vivado}} {
    puts "ERROR: option tool must be auto, vitis or vivado, got '$opt(tool)'"
    exit 2
}

cd [file dirname [file normalize [info script]]]
source project.tcl
set cflags [expr {$opt(tool) eq "vitis" ? $cflags_vitis : $cflags_vivado}]
puts "Foldline: project $project_name, top $top, part $part, clock $clock_period ns, $opt(tool) HLS"

if {$opt(reset)} {
    open_project -reset ${project_name}_prj
} else {
    open_project ${project_name}_prj
}
set_top $top
foreach f $firmware_files {
    add_files $f -cflags $cflags
}
foreach f $testbench_files {
    add_files -tb $f -cflags $cflags
}
foreach f $testbench_data {
    add_files -tb $f
}
set solution_flags [expr {$opt(reset) ? "-reset" : ""}]
if {$opt(tool) eq "vitis"} {
    open_solution {*}$solution_flags solution1 -flow_target vivado
} else {
    open_solution {*}$solution_flags solution1
}
set_part $part
create_clock -period $clock_period -name default
config_compile -name_max_length 80

if {$opt(csim)} {
    puts "***** C SIMULATION *****"
    csim_design
}
if {$opt(synth)} {
    puts "***** C SYNTHESIS *****"
    csynth_design
}
if {$opt(cosim)} {
    puts "***** C/RTL CO-SIMULATION *****"
    cosim_design
}
if {$opt(export)} {
    puts "***** EXPORT IP *****"
    export_design -format ip_catalog
}
exit
