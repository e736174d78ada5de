import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { divRound, formatDecimal, formatMoney, formatPercent, formatUnitPrice, invoiceTotals, lineAmount, minorDigits, parseDecimal, taxAmount, toUnits } from '../../src/invoicing/money';

describe('money', () => {
  it('parses decimals exactly, whatever their length', () => {
    assert.deepEqual(parseDecimal('12.345'), { units: 12345n, scale: 3 });
    assert.deepEqual(parseDecimal('-0.5'), { units: -5n, scale: 1 });
    assert.deepEqual(parseDecimal('12345678901234567890.123456'), { units: 12345678901234567890123456n, scale: 6 });
    assert.throws(() => parseDecimal('1e3'), /not a decimal/);
  });

  it('rounds half away from zero', () => {
    assert.equal(divRound(5n, 10n), 1n); // 0.5 → 1
    assert.equal(divRound(4n, 10n), 0n);
    assert.equal(divRound(15n, 10n), 2n); // 1.5 → 2 (not to even)
    assert.equal(divRound(25n, 10n), 3n); // 2.5 → 3 (not to even)
    assert.equal(divRound(-5n, 10n), -1n);
    assert.equal(divRound(-15n, 10n), -2n);
    assert.equal(divRound(-14n, 10n), -1n);
    assert.equal(toUnits(parseDecimal('0.125'), 2), 13n);
    assert.equal(toUnits(parseDecimal('0.124999'), 2), 12n);
    assert.equal(toUnits(parseDecimal('7'), 2), 700n);
  });

  it('knows the minor unit of each currency', () => {
    assert.equal(minorDigits('EUR'), 2);
    assert.equal(minorDigits('JPY'), 0);
    assert.equal(minorDigits('KWD'), 3);
  });

  it('prices a line: quantity × unit price, rounded to the minor unit', () => {
    assert.equal(lineAmount('4734', '0.0125', 'EUR'), 5918n); // 59.175 → 59.18
    assert.equal(lineAmount('10.5', '0.333', 'EUR'), 350n); // 3.4965 → 3.50
    assert.equal(lineAmount('7', '123.5', 'JPY'), 865n); // 864.5 → 865
    assert.equal(lineAmount('3', '0.3335', 'KWD'), 1001n); // 1.0005 → 1.001
    assert.equal(lineAmount('0.1', '0.2', 'EUR'), 2n); // 0.02 exactly: no binary-float 0.020000000000000004
    // Beyond what a double holds exactly.
    assert.equal(lineAmount('12345678901234.123456', '99999999.999999', 'EUR'), 123456789012339999992110n); // 1234567890123399999921.098766
  });

  it('taxes the subtotal, rounded the same way', () => {
    assert.equal(taxAmount(6268n, '0.2'), 1254n); // 1253.6
    assert.equal(taxAmount(865n, '0.2'), 173n);
    assert.equal(taxAmount(1n, '0.5'), 1n); // 0.5 → 1
    assert.equal(taxAmount(999n, '0'), 0n);
  });

  it('totals an invoice: sum of rounded lines, then tax on the subtotal', () => {
    const totals = invoiceTotals(
      [
        { quantity: '4734', unitPrice: '0.0125' },
        { quantity: '10.5', unitPrice: '0.333' },
      ],
      'EUR',
      '0.2',
    );
    assert.deepEqual(totals, { lines: [5918n, 350n], subtotal: 6268n, tax: 1254n, total: 7522n });
    // Three lines of 0.005 each: rounded per line (3 × 0.01), not on the sum (0.015 → 0.02).
    assert.equal(invoiceTotals(Array.from({ length: 3 }, () => ({ quantity: '1', unitPrice: '0.005' })), 'EUR', '0').subtotal, 3n);
  });

  it('formats amounts for reading', () => {
    assert.equal(formatMoney(123456n, 'EUR'), '1,234.56 EUR');
    assert.equal(formatMoney(5n, 'EUR'), '0.05 EUR');
    assert.equal(formatMoney(1234567n, 'JPY'), '1,234,567 JPY');
    assert.equal(formatMoney(-1005n, 'KWD'), '-1.005 KWD');
    assert.equal(formatDecimal('1234.500000'), '1,234.5');
    assert.equal(formatDecimal('3.000000'), '3');
    assert.equal(formatUnitPrice('0.500000', 'EUR'), '0.50 EUR');
    assert.equal(formatUnitPrice('0.012500', 'EUR'), '0.0125 EUR');
    assert.equal(formatUnitPrice('123.5', 'JPY'), '123.5 JPY');
    assert.equal(formatPercent('0.2'), '20 %');
    assert.equal(formatPercent('0.055'), '5.5 %');
    assert.equal(formatPercent('0'), '0 %');
  });
});
