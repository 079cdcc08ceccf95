package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/modelio"
)

func runConvertMNIST(args []string) error { return convertMNIST(args, os.Stdout, os.Stderr) }

// convertMNIST is Caffe's convert_mnist_data: IMAGES LABELS DB, or -set
// train|test DB to take the files of the GoMNIST module (or -dir).
func convertMNIST(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("convert_mnist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	backend := fs.String("backend", "lmdb", "the database to write: lmdb or leveldb")
	set := fs.String("set", "", "train or test: read that MNIST set from -dir instead of IMAGES LABELS")
	dir := fs.String("dir", "", "with -set: the folder of the MNIST IDX files (default: the GoMNIST module's)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: goexec convert_mnist [flags] IMAGES LABELS DB\n       goexec convert_mnist [flags] -set train|test DB\n\nWrites MNIST as Caffe's create_mnist.sh does (keys %08d, 1×28×28 Datums).\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	b, err := db.ParseBackend(*backend)
	if err != nil {
		return err
	}
	var images, labels, out string
	switch {
	case *set != "" && len(pos) == 1:
		out = pos[0]
		if images, labels, err = data.MNISTFiles(*dir, *set); err != nil {
			return err
		}
	case *set == "" && len(pos) == 3:
		images, labels, out = pos[0], pos[1], pos[2]
	default:
		fs.Usage()
		return fmt.Errorf("want IMAGES LABELS DB, or -set train|test DB; got %q", pos)
	}
	w, err := db.Create(b, out)
	if err != nil {
		return err
	}
	n, err := data.ConvertMNIST(images, labels, w)
	if err = errors.Join(err, w.Close()); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	fmt.Fprintf(stdout, "wrote %d images from %s to %s %s\n", n, images, db.Name(b), out)
	return nil
}

func runConvertImageset(args []string) error { return convertImageset(args, os.Stdout, os.Stderr) }

// convertImageset is Caffe's convert_imageset: ROOTFOLDER/ LISTFILE DB.
func convertImageset(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("convert_imageset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o data.ImageSetOptions
	backend := fs.String("backend", "lmdb", "the database to write: lmdb or leveldb")
	fs.BoolVar(&o.Gray, "gray", false, "treat images as grayscale ones")
	fs.BoolVar(&o.Shuffle, "shuffle", false, "randomly shuffle the order of images and their labels")
	seed := fs.Uint64("seed", 0, "seed of -shuffle")
	fs.IntVar(&o.ResizeH, "resize_height", 0, "height images are resized to (with resize_width)")
	fs.IntVar(&o.ResizeW, "resize_width", 0, "width images are resized to (with resize_height)")
	fs.BoolVar(&o.CheckSize, "check_size", false, "check that all the datums have the same size")
	fs.BoolVar(&o.Encoded, "encoded", false, "store the encoded image in the datum")
	fs.StringVar(&o.EncodeType, "encode_type", "", "with -encoded: png or jpg to re-encode; empty keeps each file's bytes")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: goexec convert_imageset [flags] ROOTFOLDER/ LISTFILE DB\n\nLISTFILE lines are \"path label\" (subfolder1/file1.JPEG 7).\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		fs.Usage()
		return fmt.Errorf("want ROOTFOLDER/ LISTFILE DB, got %q", pos)
	}
	b, err := db.ParseBackend(*backend)
	if err != nil {
		return err
	}
	o.Root, o.Seed = pos[0], *seed
	o.EncodeType = strings.TrimPrefix(strings.ToLower(o.EncodeType), ".")
	if o.EncodeType == "jpeg" {
		o.EncodeType = "jpg"
	}
	w, err := db.Create(b, pos[2])
	if err != nil {
		return err
	}
	n, err := data.ConvertImageSet(pos[1], o, w)
	if err = errors.Join(err, w.Close()); err != nil {
		return fmt.Errorf("%s: %w", pos[2], err)
	}
	fmt.Fprintf(stdout, "wrote %d images to %s %s\n", n, db.Name(b), pos[2])
	return nil
}

func runComputeImageMean(args []string) error { return computeImageMean(args, os.Stdout, os.Stderr) }

// computeImageMean is Caffe's compute_image_mean: DB [OUTPUT.binaryproto].
func computeImageMean(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compute_image_mean", flag.ContinueOnError)
	fs.SetOutput(stderr)
	backend := fs.String("backend", "lmdb", "the database to read: lmdb or leveldb")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: goexec compute_image_mean [flags] DB [OUTPUT.binaryproto]\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return fmt.Errorf("want DB [OUTPUT.binaryproto], got %q", pos)
	}
	b, err := db.ParseBackend(*backend)
	if err != nil {
		return err
	}
	bp, ch, err := data.ComputeMean(b, pos[0])
	if err != nil {
		return err
	}
	if len(pos) == 2 {
		if err := modelio.WriteProto(pos[1], bp); err != nil {
			return err
		}
	}
	for i, v := range ch {
		fmt.Fprintf(stdout, "mean_value channel [%d]: %g\n", i, v)
	}
	return nil
}
