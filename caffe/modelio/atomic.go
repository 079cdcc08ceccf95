package modelio

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path so that readers see either the old
// file or the complete new one: it writes a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// directory (EINVAL) are accepted.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isInvalid(err) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// File is one file of a group written by WriteFilesAtomic.
type File struct {
	Path string
	Data []byte
}

// WriteFilesAtomic writes a group of files that belong together (a
// snapshot's .caffemodel and .solverstate) so that none is left without the
// others: every file is written and synced to a temporary file first, and
// only when all are complete are they renamed into place. On any failure
// every temporary file is removed, files already renamed in this call are
// removed too, so a failed call leaves no new file behind, and a file they
// replaced (an earlier snapshot of the same iteration) is put back: a hard
// link to it is kept until the group is complete (where the file system
// has hard links).
func WriteFilesAtomic(files []File, perm os.FileMode) (err error) {
	tmps := make([]string, 0, len(files))
	var renamed []string
	backups := map[string]string{} // a replaced file -> the link that keeps it
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
		if err != nil {
			for _, p := range renamed {
				os.Remove(p)
			}
		}
		for p, b := range backups {
			if err != nil {
				if rerr := os.Rename(b, p); rerr != nil {
					err = fmt.Errorf("%w; the replaced %s is kept as %s: %v", err, p, b, rerr)
					continue
				}
			}
			os.Remove(b)
		}
	}()
	for _, f := range files {
		tmp, err := writeTemp(f.Path, f.Data, perm)
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		tmps = append(tmps, tmp)
	}
	for _, f := range files {
		if fi, err := os.Lstat(f.Path); err == nil && fi.Mode().IsRegular() {
			// A file system without hard links writes the group as well,
			// without the way back.
			if b, err := linkBackup(f.Path); err == nil {
				backups[f.Path] = b
			}
		}
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], f.Path); err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		tmps[i] = "" // os.Remove("") fails harmlessly
		renamed = append(renamed, f.Path)
	}
	dirs := map[string]bool{}
	for _, f := range files {
		dir := filepath.Dir(f.Path)
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// linkBackup makes a new hard link to path beside it and returns its name.
func linkBackup(path string) (string, error) {
	for i := 0; ; i++ {
		b := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.old-%d", filepath.Base(path), i))
		err := os.Link(path, b)
		if err == nil {
			return b, nil
		}
		if !os.IsExist(err) || i >= 100 {
			return "", err
		}
	}
}

// writeTemp writes data to a new synced temporary file beside path and
// returns its name; on failure nothing is left.
func writeTemp(path string, data []byte, perm os.FileMode) (tmp string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Chmod(perm); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	return tmp, f.Close()
}
