@prior_toxicity
Feature: Severe toxicity with the first CAR-T
  Grade 3 or worse ICANS, or grade 4 or worse CRS (ASTCT consensus grading), with the CAR-T that failed
  weighs against giving another CAR-T; bispecific antibodies and other treatments stay open.

  Rule: Severe neurotoxicity or CRS rules out another CAR-T

    @lbcl @second_car_t_infusion @threshold
    Scenario Outline: ICANS grade 2 versus grade 3
      Given a 56-year-old with large B-cell lymphoma who relapsed 9 months after axi-cel
      And CD19 is retained on re-biopsy
      And the worst ICANS was grade <icans>
      When postcart assesses the situation
      Then postcart finds <severe> severe toxicity with the first CAR-T
      And a second CAR-T infusion is <verdict>

      Examples:
        | icans | severe | verdict          |
        | 2     | no     | to be considered |
        | 3     | a      | not advised      |

    @lbcl @second_car_t_infusion @threshold
    Scenario Outline: CRS grade 3 versus grade 4
      Given a 64-year-old with large B-cell lymphoma who relapsed 8 months after liso-cel
      And CD19 is retained on re-biopsy
      And the worst CRS was grade <crs>
      When postcart assesses the situation
      Then a second CAR-T infusion is <verdict>
      And the rationale cites <source>

      Examples:
        | crs | verdict          | source       |
        | 3   | to be considered | Gauthier 2021 |
        | 4   | not advised      | Gauthier 2021 |

    @b_all @alternate_target_car_t @other_systemic_therapy
    Scenario: CD19-negative B-ALL after grade 4 ICANS
      Given a 35-year-old with B-ALL who relapsed 5 months after tisa-cel
      And CD19 is lost on re-biopsy
      And the worst ICANS was grade 4
      When postcart assesses the situation
      Then a CAR-T against another target is not advised
      And other systemic therapy is recommended

    @mm @bispecific_antibody @second_car_t_infusion
    Scenario: Myeloma after cilta-cel with grade 3 ICANS
      Given a 62-year-old with multiple myeloma who relapsed 13 months after cilta-cel
      And BCMA is retained on re-biopsy
      And the worst ICANS was grade 3
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised
      And a CAR-T against another target is not advised
      And a bispecific antibody is recommended

    @lbcl @second_car_t_infusion @missing_information
    Scenario: Toxicity grades not recorded
      Given a 58-year-old with large B-cell lymphoma who relapsed 10 months after axi-cel
      And CD19 is retained on re-biopsy
      When postcart assesses the situation
      Then postcart asks for the worst ICANS grade
      And postcart asks for the worst CRS grade

    @lbcl @second_car_t_infusion @missing_information
    Scenario: Toxicity grades recorded
      Given a 58-year-old with large B-cell lymphoma who relapsed 10 months after axi-cel
      And there was no CRS or ICANS
      When postcart assesses the situation
      Then postcart does not ask for the worst ICANS grade
      And postcart does not ask for the worst CRS grade

  Rule: A CAR-T is not given a fourth time

    @lbcl @second_car_t_infusion
    Scenario: Relapse after a third CD19 CAR-T infusion
      Given a 57-year-old with large B-cell lymphoma who relapsed 8 months after axi-cel
      And CD19 is retained on re-biopsy
      And she has received 3 CAR-T infusions
      When postcart assesses the situation
      Then a second CAR-T infusion is not advised
      And the rationale mentions "three or more"
