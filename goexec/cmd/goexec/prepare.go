package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// runPrepare parses and upgrades a solver and its nets for the Spark driver,
// which reads the files through Hadoop's file systems and hands goexec their
// texts as local files.
func runPrepare(args []string) error { return prepare(args, os.Stdout, os.Stderr) }

const prepareUsage = `usage: goexec prepare -solver FILE [-solver-name NAME] (-list-nets | -net SPEC...)

Parses a solver prototxt and the nets it names with Caffe's upgrades (V0/V1
nets, input fields, solver_type), for a caller that reads the files itself
(the Spark driver reads them through Hadoop, so hdfs:// and s3a:// work).

With -list-nets it prints the net paths the solver names (net, train_net,
test_net), as written, one per line. Otherwise every such path must be given
by a -net SPEC, "WRITTEN<TAB>FILE<TAB>NAME": the path as written in the
solver, a local file holding its text, and the name errors use. It writes the
SolverParameter with the nets inlined (net_param, train_net_param,
test_net_param) as binary protobuf to stdout. Errors name the file and
line:column.

flags:
`

type netSpec struct{ file, name string }

type netFlags map[string]netSpec

func (n netFlags) String() string { return fmt.Sprint(map[string]netSpec(n)) }

func (n netFlags) Set(v string) error {
	parts := strings.Split(v, "\t")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("-net %q: want WRITTEN<TAB>FILE<TAB>NAME", v)
	}
	if parts[2] == "" {
		parts[2] = parts[0]
	}
	n[parts[0]] = netSpec{file: parts[1], name: parts[2]}
	return nil
}

func prepare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prepare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), prepareUsage)
		fs.PrintDefaults()
	}
	solverFile := fs.String("solver", "", "local file holding the solver prototxt text")
	solverName := fs.String("solver-name", "", "the solver's name in errors (default: -solver)")
	list := fs.Bool("list-nets", false, "print the net paths the solver names, one per line")
	nets := netFlags{}
	fs.Var(nets, "net", "WRITTEN<TAB>FILE<TAB>NAME: the text of a net the solver names (repeatable)")
	checkState := fs.String("check-solverstate", "", "only decode this local .solverstate file and report where it is broken (byte offset, field)")
	checkModel := fs.String("check-caffemodel", "", "only decode this local .caffemodel file and report where it is broken (byte offset, field)")
	fileName := fs.String("file-name", "", "the checked file's name in errors (default: the local path)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	if *checkState != "" || *checkModel != "" {
		return checkProtoFile(*checkState, *checkModel, *fileName)
	}
	if *solverFile == "" {
		return errors.New("-solver is required")
	}
	name := *solverName
	if name == "" {
		name = *solverFile
	}
	src, err := os.ReadFile(*solverFile)
	if err != nil {
		return fmt.Errorf("solver %s: %w", name, err)
	}
	sp, err := prototxt.ParseSolver(name, src)
	if err != nil {
		return err
	}
	if *list {
		for _, p := range solverNets(sp) {
			fmt.Fprintln(stdout, p)
		}
		return nil
	}
	if err := inlineNets(sp, nets, func(msg string) { fmt.Fprintln(stderr, "warning: "+msg) }); err != nil {
		return err
	}
	b, err := proto.Marshal(sp)
	if err != nil {
		return fmt.Errorf("solver %s: %w", name, err)
	}
	_, err = stdout.Write(b)
	return err
}

// solverNets lists the net paths a solver names, as written, without repeats.
func solverNets(sp *caffepb.SolverParameter) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	add(sp.GetNet())
	add(sp.GetTrainNet())
	for _, p := range sp.GetTestNet() {
		add(p)
	}
	return out
}

// inlineNets replaces the solver's net paths by the parsed, upgraded nets.
func inlineNets(sp *caffepb.SolverParameter, nets netFlags, warn func(string)) error {
	parsed := map[string]*caffepb.NetParameter{}
	load := func(p string) (*caffepb.NetParameter, error) {
		if n, ok := parsed[p]; ok {
			return proto.Clone(n).(*caffepb.NetParameter), nil
		}
		spec, ok := nets[p]
		if !ok {
			return nil, fmt.Errorf("the solver names net %q, but no -net gives its text", p)
		}
		src, err := os.ReadFile(spec.file)
		if err != nil {
			return nil, fmt.Errorf("net %s: %w", spec.name, err)
		}
		n, err := prototxt.ParseNet(spec.name, src, prototxt.WithWarnings(warn))
		if err != nil {
			return nil, err
		}
		parsed[p] = n
		return n, nil
	}
	if sp.Net != nil {
		n, err := load(sp.GetNet())
		if err != nil {
			return err
		}
		sp.NetParam, sp.Net = n, nil
	}
	if sp.TrainNet != nil {
		n, err := load(sp.GetTrainNet())
		if err != nil {
			return err
		}
		sp.TrainNetParam, sp.TrainNet = n, nil
	}
	for _, p := range sp.GetTestNet() {
		n, err := load(p)
		if err != nil {
			return err
		}
		sp.TestNetParam = append(sp.TestNetParam, n)
	}
	sp.TestNet = nil
	return nil
}

// checkProtoFile decodes a .solverstate or .caffemodel the driver could not
// parse, for goexec's error: it names the file, the byte offset and the
// field where the data breaks off (protobuf-java says only "truncated").
func checkProtoFile(state, model, name string) error {
	path := state
	if model != "" {
		path = model
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if name == "" {
		name = path
	}
	if model != "" {
		_, err = modelio.DecodeCaffemodel(name, data)
	} else {
		_, err = modelio.DecodeSolverState(name, data)
	}
	return err
}
