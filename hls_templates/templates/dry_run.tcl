# Foldline dry run of build_prj.tcl under plain tclsh: every HLS command is a stub that records
# its call; add_files checks that each file it names exists. Usage:
#   tclsh dry_run.tcl <project_dir> <calls_out_file> [key=value ...]
# Each recorded call is one line of the output file: CALL, the command and its arguments,
# separated by tabs (backslash, tab and newline inside an argument escaped as \\, \t, \n).

set foldline_project [lindex $argv 0]
set foldline_out [lindex $argv 1]
set argv [lrange $argv 2 end]
set argc [llength $argv]
set foldline_calls {}
set foldline_errors {}

proc foldline_record {args} {
    lappend ::foldline_calls $args
}

foreach cmd {open_project set_top open_solution set_part create_clock set_clock_uncertainty csim_design
             csynth_design cosim_design export_design close_project close_solution} {
    proc $cmd {args} [format {foldline_record %s {*}$args} $cmd]
}

proc add_files {args} {
    foldline_record add_files {*}$args
    set skip 0
    foreach a $args {
        if {$skip} { set skip 0; continue }
        if {$a in {-cflags -csimflags}} { set skip 1; continue }
        if {[string index $a 0] eq "-"} { continue }
        if {![file exists $a]} { lappend ::foldline_errors "add_files: '$a' does not exist (in [pwd])" }
    }
}

# config_* commands (config_compile, config_interface, ...) are recorded; any other unknown
# command is an error, as it would be in the vendor tool.
rename unknown foldline_tcl_unknown
proc unknown {cmd args} {
    if {[string match config_* $cmd]} {
        foldline_record $cmd {*}$args
        return
    }
    lappend ::foldline_errors "unknown command '$cmd'"
    error "unknown command '$cmd'"
}

rename exit foldline_real_exit
proc exit {{code 0}} {
    foldline_record exit $code
    return -code error -errorcode FOLDLINE_EXIT "exit $code"
}

set status [catch {source [file join $foldline_project build_prj.tcl]} result options]
if {$status && [dict get $options -errorcode] ne "FOLDLINE_EXIT"} {
    lappend foldline_errors "build_prj.tcl failed: $result"
}
proc foldline_line {fields} {
    return [join [lmap a $fields {string map [list "\\" "\\\\" "\t" "\\t" "\n" "\\n"] $a}] "\t"]
}
set f [open $foldline_out w]
foreach call $foldline_calls {
    puts $f [foldline_line [list CALL {*}$call]]
}
foreach e $foldline_errors {
    puts $f [foldline_line [list ERROR $e]]
}
close $f
foldline_real_exit 0
