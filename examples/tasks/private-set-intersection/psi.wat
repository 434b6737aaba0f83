;; private-set-intersection: the number of entries two parties have in common.
;;
;; Each party's input is a list, one entry per line (e-mail addresses, say). An
;; entry is normalized before comparison: leading and trailing spaces, tabs and CR
;; are removed and ASCII letters are folded to lower case; empty lines are
;; skipped; entries longer than 256 bytes are cut to their first 256 bytes.
;;
;; Entry points:
;;   hold       run by each party's compartment: counts the distinct entries of its
;;              own input 0 and writes "entries N". The task's security context
;;              drops that output: only the exit code leaves.
;;   intersect  reads input 0 of compartments 0 and 1 (the two parties; the
;;              security context must let it) and writes "common N", N being the
;;              number of distinct normalized entries present in both lists.
;;
;; Memory map: 0x100 number scratch, 0x200 CLASS table (byte -> folded byte),
;; 0x300 messages, 0x1000 current line (256 bytes), 0x10000 input chunk (64 KiB),
;; 0x20000 output text, 0x30000 heap (hash set, copies of the entries).
;;
;; Hash set: open addressing, linear probing, power-of-two capacity, at most half
;; full; an entry is 16 bytes: pointer (0 = empty), length, FNV-1a hash, mark.
(module
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "input_read"
    (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))

  (memory (export "memory") 4)

  (global $CHUNK i32 (i32.const 0x10000))
  (global $LINE i32 (i32.const 0x1000))
  (global $LINE_MAX i32 (i32.const 256))
  (global $OUT i32 (i32.const 0x20000))

  (global $heap (mut i32) (i32.const 0x30000))
  (global $table (mut i32) (i32.const 0))
  (global $cap (mut i32) (i32.const 0))
  (global $used (mut i32) (i32.const 0))
  ;; What a complete line does: 0 = add to the set, 1 = count if in the set and
  ;; not yet counted.
  (global $mode (mut i32) (i32.const 0))
  (global $common (mut i32) (i32.const 0))
  (global $out_pos (mut i32) (i32.const 0x20000))

  (data (i32.const 0x300) "common ")    ;; 7
  (data (i32.const 0x310) "entries ")   ;; 8

  (func $alloc (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 0xffff))
                  (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func $hash (param $p i32) (param $len i32) (result i32)
    (local $h i32) (local $end i32)
    (local.set $h (i32.const 0x811c9dc5))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $h
          (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $p)))
                   (i32.const 0x01000193)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $h))

  ;; 1 if the $len bytes at $a and $b are equal.
  (func $equal (param $a i32) (param $b i32) (param $len i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func $new_table (param $slots i32)
    (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $slots) (i32.const 4)))
    (global.set $table (call $alloc (local.get $bytes)))
    (memory.fill (global.get $table) (i32.const 0) (local.get $bytes))
    (global.set $cap (local.get $slots)))

  (func $grow_table
    (local $old i32) (local $old_cap i32) (local $i i32) (local $e i32) (local $slot i32)
    (local.set $old (global.get $table))
    (local.set $old_cap (global.get $cap))
    (call $new_table (i32.shl (local.get $old_cap) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $old_cap)))
        (local.set $e (i32.add (local.get $old) (i32.shl (local.get $i) (i32.const 4))))
        (if (i32.load (local.get $e))
          (then
            (local.set $slot (i32.and (i32.load offset=8 (local.get $e))
                                      (i32.sub (global.get $cap) (i32.const 1))))
            (block $placed
              (loop $probe
                (br_if $placed
                  (i32.eqz (i32.load (i32.add (global.get $table)
                                              (i32.shl (local.get $slot) (i32.const 4))))))
                (local.set $slot (i32.and (i32.add (local.get $slot) (i32.const 1))
                                          (i32.sub (global.get $cap) (i32.const 1))))
                (br $probe)))
            (memory.copy (i32.add (global.get $table) (i32.shl (local.get $slot) (i32.const 4)))
                         (local.get $e) (i32.const 16))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  ;; The slot holding the $len bytes at $p, or the empty slot where they would go.
  (func $find (param $p i32) (param $len i32) (param $h i32) (result i32)
    (local $slot i32) (local $e i32)
    (local.set $slot (i32.and (local.get $h) (i32.sub (global.get $cap) (i32.const 1))))
    (loop $probe
      (local.set $e (i32.add (global.get $table) (i32.shl (local.get $slot) (i32.const 4))))
      (if (i32.eqz (i32.load (local.get $e))) (then (return (local.get $e))))
      (if (i32.and (i32.and (i32.eq (i32.load offset=8 (local.get $e)) (local.get $h))
                            (i32.eq (i32.load offset=4 (local.get $e)) (local.get $len)))
                   (call $equal (i32.load (local.get $e)) (local.get $p) (local.get $len)))
        (then (return (local.get $e))))
      (local.set $slot (i32.and (i32.add (local.get $slot) (i32.const 1))
                                (i32.sub (global.get $cap) (i32.const 1))))
      (br $probe))
    (unreachable))

  ;; Handles one complete, normalized line.
  (func $on_line (param $p i32) (param $len i32)
    (local $h i32) (local $e i32) (local $copy i32)
    (local.set $h (call $hash (local.get $p) (local.get $len)))
    (local.set $e (call $find (local.get $p) (local.get $len) (local.get $h)))
    (if (i32.eqz (global.get $mode))
      (then
        ;; add, unless already there
        (if (i32.load (local.get $e)) (then (return)))
        (local.set $copy (call $alloc (local.get $len)))
        (memory.copy (local.get $copy) (local.get $p) (local.get $len))
        (i32.store (local.get $e) (local.get $copy))
        (i32.store offset=4 (local.get $e) (local.get $len))
        (i32.store offset=8 (local.get $e) (local.get $h))
        (global.set $used (i32.add (global.get $used) (i32.const 1)))
        (if (i32.gt_u (i32.shl (global.get $used) (i32.const 1)) (global.get $cap))
          (then (call $grow_table)))
        (return)))
    ;; count: present and not counted yet
    (if (i32.and (i32.ne (i32.load (local.get $e)) (i32.const 0))
                 (i32.eqz (i32.load offset=12 (local.get $e))))
      (then
        (i32.store offset=12 (local.get $e) (i32.const 1))
        (global.set $common (i32.add (global.get $common) (i32.const 1))))))

  ;; Trims the line buffer's $len bytes and passes a non-empty result on.
  (func $end_line (param $len i32)
    (local $start i32) (local $c i32)
    (block $done
      (loop $lead
        (br_if $done (i32.ge_u (local.get $start) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (global.get $LINE) (local.get $start))))
        (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32))
                                              (i32.eq (local.get $c) (i32.const 9)))
                                      (i32.eq (local.get $c) (i32.const 13)))))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (br $lead)))
    (block $done
      (loop $trail
        (br_if $done (i32.le_u (local.get $len) (local.get $start)))
        (local.set $c (i32.load8_u (i32.add (global.get $LINE)
                                            (i32.sub (local.get $len) (i32.const 1)))))
        (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32))
                                              (i32.eq (local.get $c) (i32.const 9)))
                                      (i32.eq (local.get $c) (i32.const 13)))))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $trail)))
    (if (i32.gt_u (local.get $len) (local.get $start))
      (then (call $on_line (i32.add (global.get $LINE) (local.get $start))
                           (i32.sub (local.get $len) (local.get $start))))))

  ;; Streams input 0 of compartment $id line by line through $end_line.
  (func $read_lines (param $id i32)
    (local $offset i64) (local $n i32) (local $p i32) (local $end i32) (local $c i32)
    (local $len i32)
    (block $eof
      (loop $chunk
        (local.set $n (call $input_read (local.get $id) (i32.const 0) (local.get $offset)
                                        (global.get $CHUNK) (i32.const 0x10000)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $offset (i64.add (local.get $offset) (i64.extend_i32_u (local.get $n))))
        (local.set $p (global.get $CHUNK))
        (local.set $end (i32.add (local.get $p) (local.get $n)))
        (loop $byte
          (local.set $c (i32.load8_u (local.get $p)))
          (if (i32.eq (local.get $c) (i32.const 10))
            (then
              (call $end_line (local.get $len))
              (local.set $len (i32.const 0)))
            (else
              (if (i32.lt_u (local.get $len) (global.get $LINE_MAX))
                (then
                  ;; fold 'A'-'Z' to lower case
                  (if (i32.lt_u (i32.sub (local.get $c) (i32.const 65)) (i32.const 26))
                    (then (local.set $c (i32.or (local.get $c) (i32.const 32)))))
                  (i32.store8 (i32.add (global.get $LINE) (local.get $len)) (local.get $c))
                  (local.set $len (i32.add (local.get $len) (i32.const 1)))))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br_if $byte (i32.lt_u (local.get $p) (local.get $end))))
        (br $chunk)))
    (call $end_line (local.get $len)))

  (func $emit (param $p i32) (param $len i32)
    (memory.copy (global.get $out_pos) (local.get $p) (local.get $len))
    (global.set $out_pos (i32.add (global.get $out_pos) (local.get $len))))

  ;; Writes "<label><v>\n" as the output.
  (func $write_count (param $label i32) (param $label_len i32) (param $v i32)
    (local $p i32)
    (call $emit (local.get $label) (local.get $label_len))
    (local.set $p (i32.const 0x120))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
                  (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (call $emit (local.get $p) (i32.sub (i32.const 0x120) (local.get $p)))
    (i32.store8 (global.get $out_pos) (i32.const 10))
    (global.set $out_pos (i32.add (global.get $out_pos) (i32.const 1)))
    (drop (call $output_write (global.get $OUT) (i32.sub (global.get $out_pos) (global.get $OUT)))))

  (func (export "hold") (result i32)
    (call $new_table (i32.const 1024))
    (call $read_lines (call $self_id))
    (call $write_count (i32.const 0x310) (i32.const 8) (global.get $used))
    (i32.const 0))

  (func (export "intersect") (result i32)
    (call $new_table (i32.const 1024))
    (call $read_lines (i32.const 0))
    (global.set $mode (i32.const 1))
    (call $read_lines (i32.const 1))
    (call $write_count (i32.const 0x300) (i32.const 7) (global.get $common))
    (i32.const 0))
)
