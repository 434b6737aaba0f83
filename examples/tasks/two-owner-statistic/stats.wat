;; two-owner-statistic: count, mean, min and max of numbers held by data owners.
;;
;; One module, two entry points:
;;   validate   run by each data owner's compartment: checks the owner's own CSV
;;              (input 0) and writes "rows N"; exit 2 on a malformed line. The
;;              task's security context drops this output: only the exit code
;;              leaves the enclave.
;;   aggregate  run by the aggregator: reads input 0 of every compartment listed
;;              before it in the task (the owners; the security context must let
;;              it), and writes
;;                  count C
;;                  mean M.MM     (rounded half up to two decimals)
;;                  min X
;;                  max Y
;;              It releases nothing and exits 3 if there are fewer than 5 values
;;              in total, so that no single owner's few rows can be read back.
;;
;; CSV format: the first line is a header and is skipped; on every other non-empty
;; line the last comma-separated field is a whole number from 0 to 10^12 (spaces,
;; tabs and CR are ignored). Exit codes: 0 ok, 2 malformed line (logged with the
;; compartment id and line number), 3 too few values, 4 sum overflow.
;;
;; Memory map: 0x100 number scratch, 0x200 messages, 0x10000 input chunk (64 KiB),
;; 0x20000 output text.
(module
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "input_read"
    (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "veritee" "log" (func $log (param i32 i32)))

  (memory (export "memory") 3)

  (global $CHUNK i32 (i32.const 0x10000))
  (global $OUT i32 (i32.const 0x20000))
  (global $MIN_COUNT i64 (i64.const 5))
  (global $MAX_VALUE i64 (i64.const 1000000000000))

  ;; Accumulators over every parsed value.
  (global $count (mut i64) (i64.const 0))
  (global $sum (mut i64) (i64.const 0))
  (global $min (mut i64) (i64.const -1))   ;; unsigned max until the first value
  (global $max (mut i64) (i64.const 0))
  (global $overflow (mut i32) (i32.const 0))
  (global $out_pos (mut i32) (i32.const 0x20000))

  (data (i32.const 0x200) "count ")              ;; 0x200, 6
  (data (i32.const 0x208) "mean ")               ;; 0x208, 5
  (data (i32.const 0x210) "min ")                ;; 0x210, 4
  (data (i32.const 0x218) "max ")                ;; 0x218, 4
  (data (i32.const 0x220) "rows ")               ;; 0x220, 5
  (data (i32.const 0x230) "compartment ")      ;; 0x230, 12
  (data (i32.const 0x240) " line ")            ;; 0x240, 6
  (data (i32.const 0x250) ": the last field is not a whole number from 0 to 10^12")  ;; 0x250, 54
  (data (i32.const 0x290) "fewer than 5 values: nothing released")                         ;; 37
  (data (i32.const 0x2c0) "the sum overflows 64 bits")                                     ;; 25

  (func $record (param $v i64)
    (local $s i64)
    (local.set $s (i64.add (global.get $sum) (local.get $v)))
    (if (i64.lt_u (local.get $s) (global.get $sum)) (then (global.set $overflow (i32.const 1))))
    (global.set $sum (local.get $s))
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    (if (i64.lt_u (local.get $v) (global.get $min)) (then (global.set $min (local.get $v))))
    (if (i64.gt_u (local.get $v) (global.get $max)) (then (global.set $max (local.get $v)))))

  ;; Parses input 0 of compartment $id, recording every value. Returns 0, or the
  ;; 1-based number of the first malformed line.
  (func $parse (param $id i32) (result i32)
    (local $offset i64) (local $n i32) (local $p i32) (local $end i32) (local $c i32)
    (local $line i32)        ;; current line number
    (local $line_len i32)    ;; significant bytes on the current line
    (local $digits i32)      ;; digits in the current field
    (local $bad i32)         ;; current field has a non-digit or is too large
    (local $value i64)       ;; current field's value
    (local.set $line (i32.const 1))
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
          (block $next
            ;; ignored: space, tab, CR
            (br_if $next (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32))
                                         (i32.eq (local.get $c) (i32.const 9)))
                                 (i32.eq (local.get $c) (i32.const 13))))
            ;; end of line
            (if (i32.eq (local.get $c) (i32.const 10))
              (then
                (if (i32.and (i32.gt_u (local.get $line) (i32.const 1)) (i32.ne (local.get $line_len) (i32.const 0)))
                  (then
                    (if (i32.or (local.get $bad) (i32.eqz (local.get $digits)))
                      (then (return (local.get $line))))
                    (call $record (local.get $value))))
                (local.set $line (i32.add (local.get $line) (i32.const 1)))
                (local.set $line_len (i32.const 0))
                (local.set $digits (i32.const 0))
                (local.set $bad (i32.const 0))
                (local.set $value (i64.const 0))
                (br $next)))
            (local.set $line_len (i32.add (local.get $line_len) (i32.const 1)))
            ;; a comma starts a new field
            (if (i32.eq (local.get $c) (i32.const 44))
              (then
                (local.set $digits (i32.const 0))
                (local.set $bad (i32.const 0))
                (local.set $value (i64.const 0))
                (br $next)))
            ;; a digit
            (if (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10))
              (then
                (local.set $value (i64.add (i64.mul (local.get $value) (i64.const 10))
                                           (i64.extend_i32_u (i32.sub (local.get $c) (i32.const 48)))))
                (if (i64.gt_u (local.get $value) (global.get $MAX_VALUE))
                  (then (local.set $bad (i32.const 1))
                        (local.set $value (i64.const 0))))
                (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
                (br $next)))
            ;; anything else
            (local.set $bad (i32.const 1)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br_if $byte (i32.lt_u (local.get $p) (local.get $end))))
        (br $chunk)))
    ;; a last line without a newline
    (if (i32.and (i32.gt_u (local.get $line) (i32.const 1)) (i32.ne (local.get $line_len) (i32.const 0)))
      (then
        (if (i32.or (local.get $bad) (i32.eqz (local.get $digits)))
          (then (return (local.get $line))))
        (call $record (local.get $value))))
    (i32.const 0))

  ;; Output text, built at $out_pos and written once.
  (func $emit (param $p i32) (param $len i32)
    (memory.copy (global.get $out_pos) (local.get $p) (local.get $len))
    (global.set $out_pos (i32.add (global.get $out_pos) (local.get $len))))

  (func $emit_byte (param $b i32)
    (i32.store8 (global.get $out_pos) (local.get $b))
    (global.set $out_pos (i32.add (global.get $out_pos) (i32.const 1))))

  (func $emit_u64 (param $v i64)
    (local $p i32)
    (local.set $p (i32.const 0x120))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (call $emit (local.get $p) (i32.sub (i32.const 0x120) (local.get $p))))

  (func $write_output
    (drop (call $output_write (global.get $OUT) (i32.sub (global.get $out_pos) (global.get $OUT))))
    (global.set $out_pos (global.get $OUT)))

  ;; Logs "compartment <id> line <n>: the last field is not ...".
  (func $log_malformed (param $id i32) (param $line i32)
    (call $emit (i32.const 0x230) (i32.const 12))
    (call $emit_u64 (i64.extend_i32_u (local.get $id)))
    (call $emit (i32.const 0x240) (i32.const 6))
    (call $emit_u64 (i64.extend_i32_u (local.get $line)))
    (call $emit (i32.const 0x250) (i32.const 54))
    (call $log (global.get $OUT) (i32.sub (global.get $out_pos) (global.get $OUT)))
    (global.set $out_pos (global.get $OUT)))

  (func (export "validate") (result i32)
    (local $me i32) (local $bad_line i32)
    (local.set $me (call $self_id))
    (local.set $bad_line (call $parse (local.get $me)))
    (if (local.get $bad_line)
      (then
        (call $log_malformed (local.get $me) (local.get $bad_line))
        (return (i32.const 2))))
    (call $emit (i32.const 0x220) (i32.const 5))
    (call $emit_u64 (global.get $count))
    (call $emit_byte (i32.const 10))
    (call $write_output)
    (i32.const 0))

  (func (export "aggregate") (result i32)
    (local $me i32) (local $id i32) (local $bad_line i32) (local $whole i64) (local $cents i64)
    (local.set $me (call $self_id))
    (block $done
      (loop $owner
        (br_if $done (i32.ge_u (local.get $id) (local.get $me)))
        (local.set $bad_line (call $parse (local.get $id)))
        (if (local.get $bad_line)
          (then
            (call $log_malformed (local.get $id) (local.get $bad_line))
            (return (i32.const 2))))
        (local.set $id (i32.add (local.get $id) (i32.const 1)))
        (br $owner)))
    (if (global.get $overflow)
      (then (call $log (i32.const 0x2c0) (i32.const 25)) (return (i32.const 4))))
    (if (i64.lt_u (global.get $count) (global.get $MIN_COUNT))
      (then (call $log (i32.const 0x290) (i32.const 37)) (return (i32.const 3))))

    ;; mean = sum / count, two decimals rounded half up, without overflow:
    ;; whole part, then the remainder (< count) scaled by 100.
    (local.set $whole (i64.div_u (global.get $sum) (global.get $count)))
    (local.set $cents
      (i64.div_u
        (i64.add (i64.mul (i64.rem_u (global.get $sum) (global.get $count)) (i64.const 100))
                 (i64.shr_u (global.get $count) (i64.const 1)))
        (global.get $count)))
    (if (i64.eq (local.get $cents) (i64.const 100))
      (then (local.set $whole (i64.add (local.get $whole) (i64.const 1)))
            (local.set $cents (i64.const 0))))

    (call $emit (i32.const 0x200) (i32.const 6))
    (call $emit_u64 (global.get $count))
    (call $emit_byte (i32.const 10))
    (call $emit (i32.const 0x208) (i32.const 5))
    (call $emit_u64 (local.get $whole))
    (call $emit_byte (i32.const 46))
    (call $emit_byte (i32.add (i32.const 48) (i32.wrap_i64 (i64.div_u (local.get $cents) (i64.const 10)))))
    (call $emit_byte (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $cents) (i64.const 10)))))
    (call $emit_byte (i32.const 10))
    (call $emit (i32.const 0x210) (i32.const 4))
    (call $emit_u64 (global.get $min))
    (call $emit_byte (i32.const 10))
    (call $emit (i32.const 0x218) (i32.const 4))
    (call $emit_u64 (global.get $max))
    (call $emit_byte (i32.const 10))
    (call $write_output)
    (i32.const 0))
)
